"""The domain's periodic jobs, as thin Celery tasks (beat schedule in
settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from . import alerts, retention
from .models import Alert

log = logging.getLogger(__name__)


@shared_task(name="shipments.purge_location_pings")
def purge_location_pings_task() -> int:
    return retention.purge_location_pings()


@shared_task(name="shipments.evaluate_alerts")
def evaluate_alerts_task() -> tuple[int, int]:
    """Open and resolve the alerts time alone decides (stuck, late, a failed
    attempt with no retry), at the wall clock."""
    return alerts.evaluate_open_shipments(now=timezone.now())


@shared_task(name="shipments.evaluate_changed_alerts")
def evaluate_changed_alerts_task(shipment_ids: list[int]) -> tuple[int, int]:
    """Open and resolve the alerts of shipments that just changed."""
    return alerts.evaluate_alerts(shipment_ids=shipment_ids, now=timezone.now())


def evaluate_alerts_after_changes(sender, changes, **kwargs) -> None:
    """The receiver of ``shipments_changed`` (after commit): the changed
    shipments' alerts are evaluated by a worker, off the path of the request
    that recorded the events (in-process without REDIS_URL). Our own
    announcements (an alert moved a version on) are skipped; a failure is
    logged, never raised into the request, and beat catches up."""
    if sender is Alert:
        return
    try:
        evaluate_changed_alerts_task.delay([change.shipment_id for change in changes])
    except Exception:
        log.exception("Evaluating alerts after a change failed; beat will catch up.")


@shared_task(name="shipments.recompute_route_eta")
def recompute_route_eta_task(route_id: int) -> int:
    """Recompute the ETAs of a route's stops ahead (shipments.eta)."""
    from . import eta

    return eta.recompute_route(route_id=route_id)


@shared_task(name="shipments.recompute_driver_eta")
def recompute_driver_eta_task(driver_id: int) -> int:
    """Recompute the ETAs of a driver's routes of today (shipments.eta)."""
    from . import eta

    return eta.recompute_driver(driver_id=driver_id)


@shared_task(name="shipments.refresh_silent_etas")
def refresh_silent_etas_task() -> int:
    """Beat: the routes of vans that stopped pinging, recomputed from now
    (shipments.eta): windows widened, then withdrawn; nothing told."""
    from . import eta

    route_ids = eta.silent_routes(now=timezone.now())
    for route_id in route_ids:
        eta.recompute_route(route_id=route_id)
    return len(route_ids)


@shared_task(name="shipments.work_out_eta_history")
def work_out_eta_history_task() -> int:
    """Beat: each brand with a route today has its ETA history worked out
    ahead of the day's first recompute (one task per brand)."""
    from . import eta_history

    brand_ids = eta_history.brands_due(now=timezone.now())
    for brand_id in brand_ids:
        work_out_brand_eta_history_task.delay(brand_id)
    return len(brand_ids)


@shared_task(name="shipments.work_out_brand_eta_history")
def work_out_brand_eta_history_task(brand_id: int) -> bool:
    """Work one brand's ETA history for today out into the shared cache
    (shipments.eta_history)."""
    from . import eta_history

    return eta_history.work_out_ahead(brand_id)
