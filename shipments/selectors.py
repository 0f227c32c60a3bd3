"""Reads of shipments, each with the joins its page needs."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .models import Brand, Shipment, TrackingEvent


def brands_visible_to(user: AbstractBaseUser) -> QuerySet[Brand]:
    """Support staff see the brands they are members of; superusers see all."""
    if user.is_superuser:
        return Brand.objects.all()
    return Brand.objects.filter(staff=user)


# Newest first: the reverse of statuses.event_sort_key, the order the rules
# apply events in.
TIMELINE_ORDER = ["-occurred_at", "-source", "-external_id"]


def timeline(shipment: Shipment) -> QuerySet[TrackingEvent]:
    """The shipment's events, newest first, in the order the rules apply them."""
    return shipment.events.order_by(*TIMELINE_ORDER)
