"""When a tracking link stops working: TRACKING_LINK_DAYS_AFTER_DELIVERY
days after the journey ended. Before the end of the journey it works.

The journey ended when the parcel was delivered, or else when it reached
its final status, or else (a shipment that never recorded either) when it
was last saved. One rule, in two forms: for one shipment, and as a query.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import Shipment
from .statuses import TERMINAL

# The first of these that is set says when the journey ended.
ENDED_AT = ("delivered_at", "status_changed_at", "updated_at")


def link_lifetime() -> timedelta:
    """How long a link works after the journey ended."""
    return timedelta(days=settings.TRACKING_LINK_DAYS_AFTER_DELIVERY)


def link_expires_at(shipment: Shipment) -> datetime | None:
    """When the link stops working; None while the journey goes on."""
    if not shipment.is_terminal:
        return None
    ended = next(moment for field in ENDED_AT if (moment := getattr(shipment, field)) is not None)
    return ended + link_lifetime()


def is_expired(shipment: Shipment) -> bool:
    expires = link_expires_at(shipment)
    return expires is not None and timezone.now() >= expires


def with_working_link(queryset: QuerySet[Shipment]) -> QuerySet[Shipment]:
    """Those whose link still works: the rule of link_expires_at as a query."""
    since = timezone.now() - link_lifetime()
    terminal = [status.value for status in TERMINAL]
    return queryset.annotate(_ended=Coalesce(*ENDED_AT)).filter(~Q(status__in=terminal) | Q(_ended__gt=since))
