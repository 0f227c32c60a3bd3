"""Pickup points in the admin, and a shipment's delivery choice and pickup
hold on its page: each brand's staff see only their brand's."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from tracking_portal.admin_scoping import BrandScoped, BrandScopedAdmin, register_brand_path

from . import choices
from .choice_models import DeliveryChoice, PickupHold, PickupPoint

register_brand_path(PickupPoint, "brand")
register_brand_path(DeliveryChoice, "shipment__brand")
register_brand_path(PickupHold, "shipment__brand")


@admin.register(PickupPoint)
class PickupPointAdmin(BrandScopedAdmin):
    list_display = ["name", "city", "postcode", "brand", "active"]
    list_filter = ["active"]
    search_fields = ["name", "city", "postcode"]
    fields = ["brand", "name", "line1", "line2", "postcode", "city", "country", "lat", "lng", "opening_hours", "active"]

    def save_model(self, request, obj, form, change):
        choices.save_pickup_point(point=obj)


class DeliveryChoiceInline(BrandScoped, admin.StackedInline):
    """What the customer chose after a failed attempt: theirs to change,
    from the tracking page."""

    model = DeliveryChoice
    fields = ["kind", "detail", "date", "pickup_point", "updated_at", "staff_actions"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    verbose_name = verbose_name_plural = _("Customer's delivery choice")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("Staff actions"))
    def staff_actions(self, obj):
        return _action_links(obj, [("shipments_shipment_cancel_choice", _("Cancel this choice"))])


class PickupHoldInline(BrandScoped, admin.StackedInline):
    """Where the parcel waits to be collected (set through the API)."""

    model = PickupHold
    fields = ["pickup_point", "collection_code", "collect_by", "updated_at", "staff_actions"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    verbose_name = verbose_name_plural = _("Pickup: where it waits")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("Staff actions"))
    def staff_actions(self, obj):
        return _action_links(
            obj,
            [
                ("shipments_shipment_extend_hold", _("Extend the hold")),
                ("shipments_shipment_end_hold", _("End the hold")),
            ],
        )


def _action_links(obj, actions) -> str:
    """Links to the shipment's staff pages (shipments.admin_choices), which
    check the user's rights themselves."""
    if obj is None or not obj.shipment_id:
        return "—"
    return format_html_join(
        " · ",
        '<a href="{}">{}</a>',
        ((reverse(f"admin:{name}", args=[obj.shipment_id]), label) for name, label in actions),
    )


def add_choice_inlines(shipment_admin) -> None:
    for inline in (DeliveryChoiceInline, PickupHoldInline):
        if inline not in shipment_admin.inlines:
            shipment_admin.inlines = [inline, *shipment_admin.inlines]
