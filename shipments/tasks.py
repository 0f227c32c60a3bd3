"""The domain's periodic jobs, as thin Celery tasks (beat schedule in
settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import alerts, retention


@shared_task(name="shipments.purge_location_pings")
def purge_location_pings_task() -> int:
    return retention.purge_location_pings()


@shared_task(name="shipments.evaluate_alerts")
def evaluate_alerts_task() -> tuple[int, int]:
    """Open and resolve the alerts time alone decides (stuck, late, a failed
    attempt with no retry), at the wall clock."""
    return alerts.evaluate_open_shipments(now=timezone.now())
