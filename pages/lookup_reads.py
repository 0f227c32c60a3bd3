"""What the look-up reads: its candidates, parcels by tracking number and
the parcels of orders by order reference, with only the fields it compares
and shows."""

from __future__ import annotations

from django.db.models import Case, F, Q, Value, When, Window
from django.db.models.functions import RowNumber

from shipments.links import ENDED_AT
from shipments.models import Shipment


def lookup_candidates(tracking_numbers: set[str], *, brand_slug: str | None, limit: int) -> list[Shipment]:
    """Shipments with one of these tracking numbers (of the brand with
    ``brand_slug`` only, when it is given), in the brand's name order, with
    what the look-up compares and shows: the tracking number, status and
    link's token, the postcode and email, and the brand's name and slug."""
    candidates = Shipment.objects.filter(tracking_number__in=tracking_numbers)
    if brand_slug is not None:
        candidates = candidates.filter(brand__slug=brand_slug)
    candidates = candidates.select_related("brand").only(*_LOOKUP_FIELDS)
    return list(candidates.order_by("brand__name", "pk")[:limit])


def reference_candidates(references: set[str], *, brand_slug: str | None, per_brand: int, limit: int) -> list[Shipment]:
    """In one query, shipments with one of these tracking numbers or order
    references (of the brand with ``brand_slug`` only, when it is given),
    with what lookup_candidates() gives and what says whether their link
    still works (shipments.links.is_expired): at most ``per_brand`` of each
    brand, those by tracking number first, so that one brand's parcels
    under another's reference never crowd that brand's own out, and
    ``limit`` in all, in the brand's name order."""
    by_number = Q(tracking_number__in=references)
    candidates = Shipment.objects.filter(by_number | Q(order_ref__in=references - {""}))
    if brand_slug is not None:
        candidates = candidates.filter(brand__slug=brand_slug)
    first = Case(When(by_number, then=Value(0)), default=Value(1))
    candidates = candidates.annotate(
        _in_brand=Window(RowNumber(), partition_by=[F("brand_id")], order_by=[first, F("tracking_number"), F("pk")])
    ).filter(_in_brand__lte=per_brand)
    candidates = candidates.select_related("brand").only(*_LOOKUP_FIELDS, "order_ref", *ENDED_AT)
    return list(candidates.order_by("brand__name", "brand_id", "tracking_number", "pk")[:limit])


# What the look-up compares and shows of a candidate.
_LOOKUP_FIELDS = (
    "tracking_number",
    "status",
    "public_token",
    "destination_postcode",
    "recipient_email",
    "brand__name",
    "brand__slug",
)
