"""The portal's own ETA in the product: each van's route recomputed after
its pings and scans, written beside the brand's promise, told when it moves.

- ``best`` is the one rule for which estimate a parcel shows (page, API,
  the ``late`` alert): the computed one while the parcel is out for
  delivery and has one that has not gone by, else the brand's own.
- ``recompute_route`` runs the pure model (shipments.eta_model) once for
  the whole route and writes every stop ahead in one statement. Only the
  parcels whose shown minutes changed move their version on (and so their
  cached and open pages); a window that moved more than
  ETA_CHANGED_MINUTES since it was last told leaves a ``eta_changed``
  Notice in the same transaction (the outbox: exactly once).
- ``schedule`` debounces: at most one recompute per route in
  ETA_DEBOUNCE_SECONDS, run after that delay so the last trigger's
  position is the one used (a Redis key claims the slot; without Redis,
  in process at once).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from redis import RedisError

from tracking_portal import redis as redis_factory

from . import bulk, eta_history, eta_model, eta_travel, signals
from .edits import COMPUTED_ETA_FIELDS, bump_and_announce
from .models import Driver, Notice, NoticeKind, Route, Shipment, Stop
from .routes import days_that_may_be_today
from .statuses import STOP_DONE, Status

log = logging.getLogger(__name__)

COMPUTED_FIELDS = COMPUTED_ETA_FIELDS
TOLD_FIELDS = ("eta_told_start", "eta_told_end")


class Estimator:
    """The sender of what this module announces, so that its own version
    bumps do not schedule another recompute."""


@dataclass(frozen=True)
class Best:
    eta: dt.datetime | None
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    source: str  # "brand" or "computed"


def has_computed(shipment: Shipment, now: dt.datetime) -> bool:
    """The computed estimate is the better informed while the parcel is on
    the van and its window has not gone by (a van that stopped reporting
    leaves an estimate that the clock overtakes)."""
    return (
        shipment.status == Status.OUT_FOR_DELIVERY
        and shipment.computed_window_end is not None
        and shipment.computed_window_end > now
    )


def best(shipment: Shipment, now: dt.datetime) -> Best:
    """The best current estimate of when the parcel comes."""
    if has_computed(shipment, now):
        return Best(shipment.computed_eta, shipment.computed_window_start, shipment.computed_window_end, "computed")
    return Best(shipment.eta, shipment.promised_window_start, shipment.promised_window_end, "brand")


def expected_eta(shipment: Shipment) -> dt.datetime | None:
    """The expected arrival the ``late`` rule weighs against the promise:
    the computed one while the parcel is on a van, else the brand's."""
    if shipment.status == Status.OUT_FOR_DELIVERY and shipment.computed_eta is not None:
        return shipment.computed_eta
    return shipment.eta


def is_stale(position_at: dt.datetime | None, now: dt.datetime) -> bool:
    """The driver's last position is too old to trust the estimate fully."""
    return position_at is None or now - position_at > dt.timedelta(seconds=settings.ETA_STALE_POSITION_SECONDS)


def _minute(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.replace(second=0, microsecond=0) if moment is not None else None


def shown_minutes(shipment: Shipment) -> tuple:
    """What the page shows of the computed window, to the minute: a change
    below it is not worth a page refresh."""
    return (_minute(shipment.computed_window_start), _minute(shipment.computed_window_end))


def _moved_minutes(start, end, was_start, was_end) -> float:
    return max(abs((start - was_start).total_seconds()), abs((end - was_end).total_seconds())) / 60


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def recompute_route(*, route_id: int, now: dt.datetime | None = None) -> int:
    """Recompute the ETA of every stop still ahead on the route from the
    driver's last position, in one call of the model, and write it. Stops
    done or no longer out for delivery lose their computed estimate.
    One recompute of a route at a time: while another holds the route
    (a ping's task and a scan's at once), this one waits for it, then
    reads what it wrote, so a move is noticed once and what triggered
    this one (a scan just after the other read the stops) is not lost.
    Returns the number of parcels estimated; 0 when the route was held
    longer than LOCK_WAIT_SECONDS (the next trigger, or beat, catches up)."""
    given_now = now
    now = now or timezone.now()
    route = Route.objects.select_related("driver__brand").filter(pk=route_id).first()
    if route is None:
        return 0
    # Before the lock: a brand's first history of the day can take a while.
    learned = _learned(route.driver)
    with transaction.atomic():
        if not claim_route(route_id, wait_seconds=LOCK_WAIT_SECONDS):
            log.warning("ETA: route %s was held by another recompute for %ss; skipped.", route_id, LOCK_WAIT_SECONDS)
            return 0
        now = given_now or timezone.now()
        # Read after the claim: what the recompute before this one wrote
        # (the windows told) is what this one counts its moves from.
        return _recompute(route, learned, now)


# Advisory lock keys are (namespace, id); this namespace is the ETA's.
ROUTE_LOCK_NAMESPACE = 4_745_541
# A recompute takes milliseconds; a route held longer than this is stuck
# on something this trigger would not fix either.
LOCK_WAIT_SECONDS = 5.0


def claim_route(route_id: int, *, wait_seconds: float = 0) -> bool:
    """Take the route's recompute lock until the transaction ends, waiting
    up to wait_seconds while another transaction holds it; False when it
    was not free in time. PostgreSQL's advisory lock; other databases
    serialise their writers themselves."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [ROUTE_LOCK_NAMESPACE, route_id])
        if cursor.fetchone()[0]:
            return True
        if wait_seconds <= 0:
            return False
        try:
            # A savepoint, so that a lock timeout leaves the caller's
            # transaction usable; a lock taken in it stays the transaction's.
            with transaction.atomic():
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(wait_seconds * 1000)}ms"])
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ROUTE_LOCK_NAMESPACE, route_id])
                cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
        except OperationalError:
            return False
        return True


def _learned(driver) -> eta_model.Learned:
    try:
        return eta_history.learned_for(driver)
    except Exception:
        # History is a refinement: without it (its cache away), the defaults.
        log.warning("ETA: no history for driver %s; the defaults are used.", driver.pk, exc_info=True)
        return eta_model.DEFAULT_LEARNED


def _recompute(route: Route, learned: eta_model.Learned, now: dt.datetime) -> int:
    driver = Driver.objects.filter(pk=route.driver_id).only("last_lat", "last_lng", "last_position_at").first()
    if driver is None or driver.last_lat is None or driver.last_lng is None or driver.last_position_at is None:
        return 0
    stops = list(
        Stop.objects.filter(route=route)
        .select_related("shipment")
        .only(
            "id",
            "sequence",
            "completed_at",
            "visit_started_at",
            "visit_left_at",
            "shipment__id",
            "shipment__tracking_number",
            "shipment__status",
            "shipment__destination_lat",
            "shipment__destination_lng",
            "shipment__promised_window_start",
            "shipment__promised_window_end",
            *(f"shipment__{name}" for name in (*COMPUTED_FIELDS, *TOLD_FIELDS)),
        )
        .order_by("sequence")
    )
    done_statuses = {status.value for status in STOP_DONE}
    ahead: list[Stop] = []
    gone: list[Shipment] = []
    for stop in stops:
        shipment = stop.shipment
        on_van = stop.completed_at is None and shipment.status == Status.OUT_FOR_DELIVERY
        if not on_van or shipment.status in done_statuses or shipment.destination_lat is None:
            if shipment.computed_eta is not None:
                gone.append(shipment)
            continue
        ahead.append(stop)
    silence = now - driver.last_position_at
    silent = is_stale(driver.last_position_at, now)
    if silent and silence.total_seconds() > settings.ETA_WITHDRAW_POSITION_SECONDS:
        # Too long unheard of to say when: the brand's promise again.
        gone.extend(s.shipment for s in ahead if s.shipment.computed_eta is not None)
        ahead = []
    origin = eta_model.Point(driver.last_lat, driver.last_lng)
    at = driver.last_position_at
    serving = next((s for s in ahead if s.visit_started_at is not None and s.visit_left_at is None), None)
    driving_to = ahead
    if serving is not None:
        # At this door, its scan still to come: the van sets off from here
        # once the door's usual time is over.
        origin = _door(serving)
        at = eta_model.departure(at, learned, serving.visit_started_at)
        driving_to = [s for s in ahead if s is not serving]
    if silent:
        # Unheard of since its last position: at least as far off as that
        # from now, or as much nearer as it could have driven meanwhile.
        at = max(at, now)
    estimates = eta_model.estimate_route(
        origin=origin,
        at=at,
        stops=[(s.shipment.pk, _door(s)) for s in driving_to],
        learned=learned,
        travel=eta_travel.travel_from_settings(),
        tz=_zone(route.driver.brand.default_timezone),
    )
    if silent:
        estimates = eta_model.widened(estimates, silence, earliest=now)
    by_shipment = {e.stop_id: e for e in estimates}
    if serving is not None:
        arrived = serving.visit_started_at
        by_shipment[serving.shipment.pk] = eta_model.Estimate(serving.shipment.pk, 0, arrived, arrived, at)
    return _write(
        [s.shipment for s in ahead], by_shipment, gone, now=now, position_at=driver.last_position_at, tell=not silent
    )


def _door(stop: Stop) -> eta_model.Point:
    return eta_model.Point(stop.shipment.destination_lat, stop.shipment.destination_lng)


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _write(ahead: list[Shipment], estimates: dict, gone: list[Shipment], *, now, position_at, tell=True) -> int:
    threshold = settings.ETA_CHANGED_MINUTES
    changed_pages: list[int] = []
    notices: list[Notice] = []
    for shipment in gone:
        for name in COMPUTED_FIELDS:
            setattr(shipment, name, None)
        changed_pages.append(shipment.pk)
    for shipment in ahead:
        estimate = estimates.get(shipment.pk)
        if estimate is None:
            continue
        before = shown_minutes(shipment)
        # To the second: finer is noise, and the API answers in milliseconds.
        estimate = dataclasses.replace(
            estimate,
            eta=estimate.eta.replace(microsecond=0),
            window_start=estimate.window_start.replace(microsecond=0),
            window_end=estimate.window_end.replace(microsecond=0),
        )
        shipment.computed_eta = estimate.eta
        shipment.computed_window_start = estimate.window_start
        shipment.computed_window_end = estimate.window_end
        shipment.computed_at = now
        shipment.computed_from = position_at
        if shown_minutes(shipment) != before:
            changed_pages.append(shipment.pk)
        was_start = shipment.eta_told_start or shipment.promised_window_start
        was_end = shipment.eta_told_end or shipment.promised_window_end
        if estimate.stops_ahead == 0 or not tell:
            # The driver is at the door: the window closing on the moment
            # is no news worth a message. Nor is a silent van's widening
            # window: what moves it is the clock, every minute; the next
            # ping's estimate is told against the window told before.
            continue
        if was_start is None or was_end is None:
            # Nothing told or promised to move from: this is the reference.
            shipment.eta_told_start, shipment.eta_told_end = estimate.window_start, estimate.window_end
        elif _moved_minutes(estimate.window_start, estimate.window_end, was_start, was_end) > threshold:
            notices.append(_notice(shipment, estimate, was_start, was_end, now))
            shipment.eta_told_start, shipment.eta_told_end = estimate.window_start, estimate.window_end
    with transaction.atomic():
        bulk.update([*ahead, *gone], [*COMPUTED_FIELDS, *TOLD_FIELDS])
        if notices:
            written = Notice.objects.bulk_create(notices)
            signals.announce_notices_on_commit(Estimator, [n.pk for n in written])
        if changed_pages:
            bump_and_announce(Shipment.objects.filter(pk__in=changed_pages), sender=Estimator, times_only=True)
    return len(estimates)


def _notice(shipment: Shipment, estimate, was_start, was_end, now) -> Notice:
    return Notice(
        shipment_id=shipment.pk,
        kind=NoticeKind.ETA_CHANGED,
        data={
            "tracking_number": shipment.tracking_number,
            "eta": _iso(estimate.eta),
            "eta_window": {"start": _iso(estimate.window_start), "end": _iso(estimate.window_end)},
            "previous_window": {"start": _iso(was_start), "end": _iso(was_end)},
            "moved_minutes": round(_moved_minutes(estimate.window_start, estimate.window_end, was_start, was_end)),
            "computed_at": _iso(now),
        },
    )


# Scheduling: which routes a change concerns, and the debounce.


def silent_routes(*, now: dt.datetime) -> list[int]:
    """Today's routes whose van has been silent past
    ETA_STALE_POSITION_SECONDS while a parcel on it still shows the
    estimate worked out from it: beat recomputes them (shipments.tasks)."""
    quiet_since = now - dt.timedelta(seconds=settings.ETA_STALE_POSITION_SECONDS)
    return list(
        Stop.objects.filter(
            route__date__in=days_that_may_be_today(),
            route__driver__last_position_at__lt=quiet_since,
            shipment__computed_eta__isnull=False,
        )
        .order_by()
        .values_list("route_id", flat=True)
        .distinct()
    )


def routes_of_driver(driver_id: int) -> list[int]:
    return list(
        Route.objects.filter(driver_id=driver_id, date__in=days_that_may_be_today()).values_list("pk", flat=True)
    )


def routes_of_shipments(shipment_ids: Iterable[int]) -> list[int]:
    return list(
        Stop.objects.filter(shipment_id__in=list(shipment_ids), route__date__in=days_that_may_be_today())
        .order_by()
        .values_list("route_id", flat=True)
        .distinct()
    )


def _debounce_key(route_id: int) -> str:
    return f"tp:eta:due:{route_id}"


def _debouncing():
    """The shared Redis client when recomputes are debounced through it,
    else None (no Redis, eager tasks, or no debounce asked for)."""
    if settings.CELERY_TASK_ALWAYS_EAGER or settings.ETA_DEBOUNCE_SECONDS <= 0:
        return None
    return redis_factory.shared_client()


def _recompute_here(route_ids: list[int]) -> list[int]:
    for route_id in route_ids:
        recompute_route(route_id=route_id)
    return route_ids


def schedule(route_ids: Iterable[int]) -> list[int]:
    """Recompute these routes soon: each at most once per
    ETA_DEBOUNCE_SECONDS, by a task that runs at the end of that time (the
    last trigger's position is then the driver's). Returns the routes a
    task was enqueued for. Without Redis (or while it is away), at once in
    this process."""
    from .tasks import recompute_route_eta_task

    route_ids = sorted(set(route_ids))
    if not route_ids:
        return []
    client = _debouncing()
    if client is None:
        return _recompute_here(route_ids)
    delay = settings.ETA_DEBOUNCE_SECONDS
    try:
        pipe = client.pipeline(transaction=False)
        for route_id in route_ids:
            pipe.set(_debounce_key(route_id), 1, nx=True, ex=delay)
        claimed = [route_id for route_id, won in zip(route_ids, pipe.execute(), strict=True) if won]
    except RedisError:
        log.warning("ETA debounce: Redis unavailable; recomputing %d routes here.", len(route_ids))
        return _recompute_here(route_ids)
    for route_id in claimed:
        recompute_route_eta_task.apply_async(args=[route_id], countdown=delay)
    return claimed


def schedule_driver(driver_id: int) -> bool:
    """Recompute this driver's routes of today soon, at most once per
    ETA_DEBOUNCE_SECONDS. A ping costs one Redis round trip and no query:
    the task looks the routes up, once per debounce (a lookup per ping cost
    a fifth of the ping rate, bench/eta_pings.py). True when a task was
    enqueued or the routes recomputed here."""
    from .tasks import recompute_driver_eta_task

    client = _debouncing()
    if client is None:
        return bool(_recompute_here(routes_of_driver(driver_id)))
    delay = settings.ETA_DEBOUNCE_SECONDS
    try:
        claimed = client.set(f"tp:eta:due:driver:{driver_id}", 1, nx=True, ex=delay)
    except RedisError:
        log.warning("ETA debounce: Redis unavailable; recomputing driver %s's routes here.", driver_id)
        return bool(_recompute_here(routes_of_driver(driver_id)))
    if claimed:
        recompute_driver_eta_task.apply_async(args=[driver_id], countdown=delay)
    return bool(claimed)


def recompute_driver(*, driver_id: int) -> int:
    """Recompute every route of the driver's that may be running today."""
    return sum(recompute_route(route_id=route_id) for route_id in routes_of_driver(driver_id))


def on_driver_moved(sender, driver_id: int, **kwargs) -> None:
    """After a driver's pings commit: that driver's routes."""
    if not settings.ETA_ON_PINGS:
        return
    try:
        schedule_driver(driver_id)
    except Exception:
        log.exception("ETA: could not schedule the routes of driver %s", driver_id)


def on_shipments_changed(sender, changes, **kwargs) -> None:
    """After a scan (a stop's status moved) or a route posted anew: the
    routes these parcels are on. Our own announcements and other changes
    that kept the status are skipped."""
    if sender is Estimator or not settings.ETA_ON_PINGS:
        return
    moved = [c.shipment_id for c in changes if c.status_change_id is not None or sender is Route]
    if not moved:
        return
    try:
        schedule(routes_of_shipments(moved))
    except Exception:
        log.exception("ETA: could not schedule the routes of %d changed shipments", len(moved))
