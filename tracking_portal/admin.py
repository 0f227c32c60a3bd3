"""Where the apps' admin pages meet. Neither app imports the other's admin:
this module, loaded by the admin's autodiscovery after both (tracking_portal
comes last in INSTALLED_APPS), puts the messages a shipment caused on its
page."""

from notifications.admin import ShipmentNotificationInline
from shipments.admin import ShipmentAdmin

if ShipmentNotificationInline not in ShipmentAdmin.inlines:
    ShipmentAdmin.inlines = [*ShipmentAdmin.inlines, ShipmentNotificationInline]
