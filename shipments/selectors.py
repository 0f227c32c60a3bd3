"""Reads of shipments, each with the joins its page needs."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .models import Brand, Shipment, TrackingEvent


def brands_visible_to(user: AbstractBaseUser) -> QuerySet[Brand]:
    """Support staff see the brands they are members of; superusers see all."""
    if user.is_superuser:
        return Brand.objects.all()
    return Brand.objects.filter(staff=user)


def shipments_visible_to(user: AbstractBaseUser) -> QuerySet[Shipment]:
    qs = Shipment.objects.select_related("brand")
    if user.is_superuser:
        return qs
    return qs.filter(brand__staff=user)


def timeline(shipment: Shipment) -> QuerySet[TrackingEvent]:
    """The shipment's events, newest first, in the order the rules apply them."""
    return shipment.events.order_by("-occurred_at", "-source", "-external_id")
