"""The alerts in the admin: a read-only list for now (open ones first,
oldest first), scoped to the staff user's brands like everything else.
Assigning, notes and resolving with a reason code come with the
"Needs attention" queue; they will go through shipments.alerts."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from tracking_portal.admin_scoping import BrandScopedAdmin, VisibleBrandsFilter, register_brand_path

from .models import Alert

register_brand_path(Alert, "shipment__brand")


@admin.register(Alert)
class AlertAdmin(BrandScopedAdmin):
    list_display = ["shipment", "kind", "state", "opened_at", "resolved_at", "assigned_to"]
    list_filter = ["kind", "state", ("shipment__brand", VisibleBrandsFilter)]
    search_fields = ["=shipment__tracking_number"]
    search_help_text = _("Tracking number (exact).")
    list_select_related = ["shipment", "assigned_to"]
    # "open" sorts before "resolved": what is open comes first, oldest first.
    ordering = ["state", "opened_at", "pk"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
