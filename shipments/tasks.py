"""The domain's periodic jobs, as thin Celery tasks (beat schedule in
settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from . import retention


@shared_task(name="shipments.purge_location_pings")
def purge_location_pings_task() -> int:
    return retention.purge_location_pings()
