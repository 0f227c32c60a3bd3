"""Where the apps' admin pages meet. Neither app imports the other's admin:
this module, loaded by the admin's autodiscovery after both (tracking_portal
comes last in INSTALLED_APPS), puts the messages a shipment caused on its
page."""

from django.contrib import admin

from notifications.admin import ShipmentNotificationInline
from shipments import admin_exports, admin_imports, admin_pickup
from shipments.admin import ShipmentAdmin
from shipments.admin_alerts import AlertAdmin

if ShipmentNotificationInline not in ShipmentAdmin.inlines:
    ShipmentAdmin.inlines = [*ShipmentAdmin.inlines, ShipmentNotificationInline]

# CSV: every list exports (the action); shipments and alerts carry an
# export link, and shipments their import pages.
admin.site.add_action(admin_exports.export_as_csv, "export_as_csv")
admin_exports.add_export_link(AlertAdmin)
admin_exports.add_export_link(ShipmentAdmin)
admin_imports.add_import_pages(ShipmentAdmin)
# The customer's delivery choice and the pickup hold, first on the page.
admin_pickup.add_choice_inlines(ShipmentAdmin)
