"""How long the portal keeps drivers' raw GPS.

The rule it keeps: a raw location ping is kept for
LOCATION_PING_RETENTION_DAYS, then deleted (by shipments.tasks, hourly).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import LocationPing


def purge_location_pings() -> int:
    """Delete raw GPS pings older than LOCATION_PING_RETENTION_DAYS; the
    number deleted."""
    cutoff = timezone.now() - timedelta(days=settings.LOCATION_PING_RETENTION_DAYS)
    deleted, _ = LocationPing.objects.filter(recorded_at__lt=cutoff).delete()
    return deleted
