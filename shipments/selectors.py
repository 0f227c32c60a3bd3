"""The domain's reads, each with the joins and columns its answer needs.
The services' own locking reads stay beside the writes they serve; the
tracking page's reads are in pages/reads.py."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from .models import Alert, Brand, Route, Shipment, Stop, TrackingEvent
from .statuses import EVENT_ORDER, NEWEST_FIRST

# Newest first: statuses.EVENT_ORDER reversed, as the timeline shows it.
TIMELINE_ORDER = list(NEWEST_FIRST)

# What the driver's manifest shows of each stop's parcel.
MANIFEST_SHIPMENT_FIELDS = (
    "tracking_number",
    "status",
    "recipient_name",
    "recipient_phone",
    "destination_line1",
    "destination_line2",
    "destination_city",
    "destination_postcode",
    "destination_country",
    "destination_lat",
    "destination_lng",
    "delivery_instructions",
    "delivery_instructions_at",
)

# What the manifest and the API show of the customer's delivery choice
# (its pickup point comes whole).
CHOICE_FIELDS = ("kind", "detail", "date", "updated_at", "pickup_point")


def brands_visible_to(user: AbstractBaseUser) -> QuerySet[Brand]:
    """Support staff see the brands they are members of; superusers see all."""
    if user.is_superuser:
        return Brand.objects.all()
    return Brand.objects.filter(staff=user)


def brand_by_slug(slug: str) -> Brand | None:
    return Brand.objects.filter(slug=slug).first()


def timeline(shipment: Shipment) -> QuerySet[TrackingEvent]:
    """The shipment's events, newest first: the ORM twin of the tracking
    page's written-out pages.reads.timeline_rows."""
    return shipment.events.order_by(*TIMELINE_ORDER)


def brand_shipment_with_events(brand: Brand, tracking_number: str) -> Shipment | None:
    """The brand's shipment with this tracking number and its events in
    EVENT_ORDER (two queries), or None; another brand's counts as none."""
    return (
        Shipment.objects.filter(brand=brand, tracking_number=tracking_number)
        .select_related("delivery_choice__pickup_point", "pickup_hold__pickup_point")
        .prefetch_related(Prefetch("events", queryset=TrackingEvent.objects.order_by(*EVENT_ORDER)))
        .first()
    )


def brand_route(brand: Brand, driver_ref: str, day: dt.date) -> Route | None:
    """The route of the brand's driver with this ref on this day, or None."""
    return Route.objects.filter(driver__brand=brand, driver__ref=driver_ref, date=day).only("pk").first()


def manifest_stops(route: Route, brand: Brand) -> QuerySet[Stop]:
    """The route's stops in order, each with what the driver's manifest
    shows of its parcel, in one query however long the route is. Only the
    brand's parcels, whatever stops an older admin let onto the route: the
    manifest shows recipients. The customer's delivery choice (and its
    pickup point) comes in the same query."""
    return (
        Stop.objects.filter(route=route, shipment__brand=brand)
        .select_related("shipment__delivery_choice__pickup_point")
        .only(
            "sequence",
            "completed_at",
            *(f"shipment__{name}" for name in MANIFEST_SHIPMENT_FIELDS),
            *(f"shipment__delivery_choice__{name}" for name in CHOICE_FIELDS),
        )
        .order_by("sequence")
    )


def brand_alerts(brand: Brand, *, state: str | None = None, kind: str | None = None) -> QuerySet[Alert]:
    """The brand's alerts, newest first, with their shipment's tracking
    number (one query a page); another brand's never appear."""
    alerts = (
        Alert.objects.filter(shipment__brand=brand)
        .select_related("shipment")
        .only("kind", "state", "opened_at", "resolved_at", "detail", "shipment__tracking_number")
    )
    if state:
        alerts = alerts.filter(state=state)
    if kind:
        alerts = alerts.filter(kind=kind)
    return alerts.order_by("-opened_at", "-pk")
