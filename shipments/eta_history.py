"""What the recorded days teach the ETA: the database read into the
backtest's ``Day`` objects, and ``learned_for`` a driver, cached.

A recorded day is a driver's route on a date: its stops in the route's
order (the door is the shipment's destination), the driver's pings of that
local day, and for each stop when the van reached it (the visit the
missed-scan rule followed; the scan where no visit was seen), when it was
scanned (the stop's completion, or the parcel's delivered or failed-attempt
event that day) and when the van left.

``learned_for`` replays the brand's days before today through the model
(``shipments.eta_scoring``): the driver's own legs and doors, falling back to
the brand's drivers', and the windows from the errors the model made on
those days. Nothing of today is used, so it is the same all day: it is
worked out once a day per brand and kept in the shared cache, and in the
process for a few minutes, since it is read on every recompute.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable

from django.core.cache import cache
from django.utils import timezone

from .eta_model import DEFAULT_LEARNED, Learned, Point
from .eta_scoring import Day, DayStop, History, replay
from .models import Brand, Driver, LocationPing, Route, Stop, TrackingEvent
from .statuses import Status

# How far back history reaches, and how many of a brand's drivers stand for
# "the area": enough to learn the hours and doors, few enough that a
# brand's first recompute of the day reads a bounded number of pings.
HISTORY_DAYS = 14
AREA_DRIVERS = 20
# Pings (the bulk of the rows) are read for the last few days only: they
# give the detour and the replay that measures the window; the older days
# still teach legs and doors from their stops.
PING_DAYS = 4
# While one process works a brand's history out, the others answer with
# the defaults rather than all doing the same work at once.
WORKING_SECONDS = 120
# The replay that measures the window's errors recomputes every so often.
REPLAY_EVERY_S = 300.0
CACHE_SECONDS = 26 * 3600
PROCESS_SECONDS = 300.0
SCANS = (Status.DELIVERED, Status.FAILED_ATTEMPT)

_memo: dict[tuple[int, dt.date], tuple[float, dict[int, Learned], Learned]] = {}


def brand_tz(brand: Brand) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(brand.default_timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _local_day(on: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(on, dt.time(0), tz)
    return start, dt.datetime.combine(on + dt.timedelta(days=1), dt.time(0), tz)


def recorded_days(
    *,
    driver_ids: Iterable[int],
    since: dt.date,
    until: dt.date,
    tz: dt.tzinfo,
    pings_since: dt.date | None = None,
) -> list[Day]:
    """The drivers' route days from ``since`` up to (not including)
    ``until``, oldest first, each with the pings of its local day (of the
    days from ``pings_since`` on, when given). Stops without a destination
    are left out (no door to drive to)."""
    driver_ids = list(driver_ids)
    # Plain rows: a brand's fortnight is thousands of stops, read on the
    # day's first recompute.
    stops = list(
        Stop.objects.filter(
            route__driver_id__in=driver_ids,
            route__date__gte=since,
            route__date__lt=until,
            shipment__destination_lat__isnull=False,
            shipment__destination_lng__isnull=False,
        )
        .order_by("route__date", "route__driver_id", "sequence")
        .values_list(
            "pk",
            "sequence",
            "completed_at",
            "visit_started_at",
            "visit_left_at",
            "route__date",
            "route__driver_id",
            "route__driver__ref",
            "shipment_id",
            "shipment__destination_lat",
            "shipment__destination_lng",
            "shipment__promised_window_start",
            "shipment__promised_window_end",
        )
    )
    if not stops:
        return []
    first, _ = _local_day(since, tz)
    _, last = _local_day(until - dt.timedelta(days=1), tz)
    scans: dict[int, list[dt.datetime]] = defaultdict(list)
    unscanned = {row[8] for row in stops if row[2] is None}
    if unscanned:
        for shipment_id, occurred_at in TrackingEvent.objects.filter(
            shipment_id__in=unscanned, status__in=SCANS, occurred_at__gte=first, occurred_at__lt=last
        ).values_list("shipment_id", "occurred_at"):
            scans[shipment_id].append(occurred_at)
    days: dict[tuple[int, dt.date], Day] = {}
    for (
        stop_id,
        sequence,
        completed_at,
        visit_started_at,
        visit_left_at,
        date,
        driver_id,
        ref,
        shipment_id,
        lat,
        lng,
        promised_start,
        promised_end,
    ) in stops:
        key = (driver_id, date)
        day = days.get(key)
        if day is None:
            day = days[key] = Day(driver=ref, day=date, tz=tz, depot=Point(0.0, 0.0), stops=[])
        scanned = completed_at
        if scanned is None:
            start, end = _local_day(date, tz)
            scanned = min((t for t in scans.get(shipment_id, ()) if start <= t < end), default=None)
        day.stops.append(
            DayStop(
                stop_id=stop_id,
                sequence=sequence,
                door=Point(lat, lng),
                arrived_at=visit_started_at or scanned,
                scanned_at=scanned,
                left_at=visit_left_at,
                promised=(promised_start, promised_end) if promised_start and promised_end else None,
            )
        )
    if pings_since is not None:
        first = max(first, _local_day(pings_since, tz)[0])
    pings = LocationPing.objects.filter(
        driver_id__in={driver for driver, _ in days}, recorded_at__gte=first, recorded_at__lt=last
    ).order_by("driver_id", "recorded_at")
    for driver_id, recorded_at, lat, lng in pings.values_list("driver_id", "recorded_at", "lat", "lng").iterator():
        day = days.get((driver_id, recorded_at.astimezone(tz).date()))
        if day is not None:
            day.pings.append((recorded_at, Point(lat, lng)))
    for day in days.values():
        if day.pings:
            day.depot = day.pings[0][1]
    return [days[key] for key in sorted(days, key=lambda k: (k[1], k[0]))]


def build_history(days: Iterable[Day]) -> History:
    """The days replayed in order, each with what the days before taught,
    so the window's errors are the ones the model would have made."""
    history = History()
    for day in sorted(days, key=lambda d: (d.day, d.driver)):
        history.add(day, replay(day, history.learned(day.driver), every_s=REPLAY_EVERY_S, methods=("model",)))
    return history


def _work_out(brand: Brand, on: dt.date) -> tuple[dict[int, Learned], Learned]:
    tz = brand_tz(brand)
    drivers = list(
        Driver.objects.filter(brand=brand, routes__date__lt=on, routes__date__gte=on - dt.timedelta(days=HISTORY_DAYS))
        .distinct()
        .order_by("-last_position_at", "pk")
        .values_list("pk", "ref")[:AREA_DRIVERS]
    )
    if not drivers:
        return {}, DEFAULT_LEARNED
    days = recorded_days(
        driver_ids=[pk for pk, _ in drivers],
        since=on - dt.timedelta(days=HISTORY_DAYS),
        until=on,
        tz=tz,
        pings_since=on - dt.timedelta(days=PING_DAYS),
    )
    history = build_history(days)
    by_ref = {ref: pk for pk, ref in drivers}
    learned = {by_ref[ref]: history.learned(ref) for ref in history.drivers if ref in by_ref}
    return learned, history.learned("")


def _cache_key(brand_id: int, on: dt.date) -> str:
    return f"eta:learned:{brand_id}:{on.isoformat()}"


def work_out(brand: Brand, *, on: dt.date | None = None) -> None:
    """Work the brand's history out for ``on`` (today) and keep it in the
    shared cache: for a periodic task to run before the day's first ping,
    so that no ping waits on it."""
    on = on or timezone.now().astimezone(brand_tz(brand)).date()
    cache.set(_cache_key(brand.pk, on), _work_out(brand, on), CACHE_SECONDS)


def brands_due(*, now: dt.datetime) -> list[int]:
    """The brands with a route today (in each brand's time zone) whose
    history for today is not in the shared cache yet: those a periodic
    task works out ahead of their first recompute."""
    utc_today = now.astimezone(dt.UTC).date()
    candidates = (
        Route.objects.filter(date__range=(utc_today - dt.timedelta(days=1), utc_today + dt.timedelta(days=1)))
        .values_list("driver__brand_id", "driver__brand__default_timezone", "date")
        .distinct()
    )
    due = set()
    for brand_id, tz_name, date in candidates:
        if brand_id in due:
            continue
        try:
            tz = zoneinfo.ZoneInfo(tz_name or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = dt.UTC
        if date == now.astimezone(tz).date() and cache.get(_cache_key(brand_id, date)) is None:
            due.add(brand_id)
    return sorted(due)


def work_out_ahead(brand_id: int, *, now: dt.datetime | None = None) -> bool:
    """``work_out`` for one brand's today, unless it is already in the
    shared cache or another process is working it out; True when it did."""
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is None:
        return False
    on = (now or timezone.now()).astimezone(brand_tz(brand)).date()
    cache_key = _cache_key(brand.pk, on)
    if cache.get(cache_key) is not None or not cache.add(f"{cache_key}:working", 1, WORKING_SECONDS):
        return False
    try:
        work_out(brand, on=on)
    finally:
        cache.delete(f"{cache_key}:working")
    return True


def learned_for(driver: Driver, *, on: dt.date | None = None) -> Learned:
    """What the days before ``on`` (today in the brand's time zone) taught
    about this driver, or about the brand's drivers when this one has no
    history yet; the defaults when the brand has none either.

    Read from the process (no query), else from the shared cache; on a miss
    worked out here, by one process at a time (the others answer with the
    defaults meanwhile)."""
    brand = driver.brand
    on = on or timezone.now().astimezone(brand_tz(brand)).date()
    key = (brand.pk, on)
    held = _memo.get(key)
    if held is None or held[0] < time.monotonic():
        cache_key = _cache_key(brand.pk, on)
        stored = cache.get(cache_key)
        if stored is None:
            if not cache.add(f"{cache_key}:working", 1, WORKING_SECONDS):
                return DEFAULT_LEARNED
            try:
                stored = _work_out(brand, on)
                cache.set(cache_key, stored, CACHE_SECONDS)
            finally:
                cache.delete(f"{cache_key}:working")
        held = (time.monotonic() + PROCESS_SECONDS, *stored)
        _memo[key] = held
        # Yesterday's entries are of no more use.
        for old in [k for k in _memo if k[1] < on]:
            del _memo[old]
    _, by_driver, area = held
    return by_driver.get(driver.pk, area)


def forget() -> None:
    """Drop the process's copies (tests; after a bulk import of history)."""
    _memo.clear()
