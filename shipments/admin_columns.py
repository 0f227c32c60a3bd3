"""The shipments' list columns that keep it readable at 1,280 px beside
the admin's navigation and filters: the status with the ETA under it, who
and where in one cell, the brand only for staff who see more than one."""

from django.contrib import admin
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import selectors


def shipment_columns(request) -> list:
    """The list's columns for this user: without the brand when they see
    only one (it would say the same on every row)."""
    many = getattr(request, "_sees_many_brands", None)
    if many is None:
        many = request._sees_many_brands = selectors.brands_visible_to(request.user)[:2].count() > 1
    return [column for column in SHIPMENT_COLUMNS if many or column != "brand"]


@admin.display(description=_("Recipient"), ordering="recipient_name")
def recipient(shipment):
    place = " · ".join(part for part in (shipment.destination_city, shipment.destination_postcode) if part)
    return format_html('{}<br><span class="quiet">{}</span>', shipment.recipient_name or "—", place or "")


def status_badge(shipment) -> str:
    return format_html('<span class="badge status status-{}">{}</span>', shipment.status, shipment.get_status_display())


@admin.display(description=_("Status and ETA"), ordering="status")
def status_and_eta(shipment):
    """The status badge, and below it the ETA in a short form."""
    if shipment.eta is None:
        return status_badge(shipment)
    moment = timezone.localtime(shipment.eta)
    return format_html(
        '{}<br><span class="quiet">{} <time datetime="{}">{}</time></span>',
        status_badge(shipment),
        _("ETA"),
        moment.isoformat(),
        formats.date_format(moment, "j M H:i"),
    )


SHIPMENT_COLUMNS = ["tracking_number", "brand", status_and_eta, recipient]
