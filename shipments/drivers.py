"""Writes for drivers: their GPS positions and their routes for the day."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import bounds, signals, visits
from .edits import bump_and_announce, drop_computed_eta
from .models import Brand, Driver, LocationPing, Route, Shipment, Stop


class PingRejected(ValueError):
    def __init__(self, message: str, *, index: int, field: str):
        super().__init__(message)
        self.index = index
        self.field = field


class UnknownStops(ValueError):
    """Some stops name no shipment of this brand."""

    def __init__(self, positions: list[tuple[int, str]]):
        super().__init__("Unknown tracking numbers: " + ", ".join(number for _, number in positions))
        self.positions = positions


@dataclass(frozen=True)
class Ping:
    lat: float
    lng: float
    recorded_at: dt.datetime
    accuracy_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None


@dataclass(frozen=True)
class PingsRecorded:
    driver: Driver
    stored: int
    duplicates: int
    moved: bool


def validate_ping(ping: Ping, index: int = 0) -> None:
    """A ping is stored only with coordinates within their ranges
    (shipments.bounds), an aware time, and no negative accuracy or speed or
    heading beyond a full turn."""
    if not bounds.is_latitude(ping.lat):
        raise PingRejected(bounds.LATITUDE_ERROR, index=index, field="lat")
    if not bounds.is_longitude(ping.lng):
        raise PingRejected(bounds.LONGITUDE_ERROR, index=index, field="lng")
    if timezone.is_naive(ping.recorded_at):
        raise PingRejected("recorded_at needs a time zone offset.", index=index, field="recorded_at")
    if ping.accuracy_m is not None and ping.accuracy_m < 0:
        raise PingRejected("accuracy_m cannot be negative.", index=index, field="accuracy_m")
    if ping.speed_mps is not None and ping.speed_mps < 0:
        raise PingRejected("speed_mps cannot be negative.", index=index, field="speed_mps")
    if ping.heading_deg is not None and not 0 <= ping.heading_deg <= 360:
        raise PingRejected("heading_deg must be between 0 and 360.", index=index, field="heading_deg")


def record_locations(*, brand: Brand, driver_ref: str, pings: Sequence[Ping]) -> PingsRecorded:
    """Store a batch of a driver's GPS pings (making the driver on first
    sight) and move the driver's last position to the newest ping by
    recorded_at.

    A ping older than the position already held, arriving late, is stored but
    never moves the driver backwards. A ping resent with the same time is
    stored once. ``driver_moved`` is sent after commit when the position moved.
    """
    for index, ping in enumerate(pings):
        validate_ping(ping, index)
    with transaction.atomic():
        driver, _ = Driver.objects.get_or_create(brand=brand, ref=driver_ref)
        driver = Driver.objects.select_for_update().get(pk=driver.pk)
        seen = set(
            LocationPing.objects.filter(
                driver=driver, recorded_at__in={ping.recorded_at for ping in pings}
            ).values_list("recorded_at", flat=True)
        )
        fresh: dict[dt.datetime, Ping] = {}
        for ping in pings:
            if ping.recorded_at not in seen:
                fresh.setdefault(ping.recorded_at, ping)
        LocationPing.objects.bulk_create(
            LocationPing(
                driver=driver,
                lat=ping.lat,
                lng=ping.lng,
                recorded_at=ping.recorded_at,
                accuracy_m=ping.accuracy_m,
                speed_mps=ping.speed_mps,
                heading_deg=ping.heading_deg,
            )
            for ping in fresh.values()
        )
        newest = max(fresh.values(), key=lambda ping: ping.recorded_at, default=None)
        moved = newest is not None and (driver.last_position_at is None or newest.recorded_at > driver.last_position_at)
        if moved and settings.ALERTS_DETECT_ON_PINGS:
            # Only pings newer than the driver's last position follow the
            # stops' visits: a late one must not move a visit backwards.
            since = driver.last_position_at
            visits.follow_pings(
                driver=driver, pings=[p for p in fresh.values() if since is None or p.recorded_at > since]
            )
        if moved:
            driver.last_lat, driver.last_lng = newest.lat, newest.lng
            driver.last_heading_deg, driver.last_speed_mps = newest.heading_deg, newest.speed_mps
            driver.last_position_at = newest.recorded_at
            driver.save(
                update_fields=["last_lat", "last_lng", "last_heading_deg", "last_speed_mps", "last_position_at"]
            )
            driver_id = driver.pk
            transaction.on_commit(lambda: signals.driver_moved.send(sender=Driver, driver_id=driver_id))
    return PingsRecorded(driver=driver, stored=len(fresh), duplicates=len(pings) - len(fresh), moved=moved)


STOP_HISTORY = ("completed_at", "visit_started_at", "visit_near_at", "visit_left_at")


def set_route(*, brand: Brand, driver_ref: str, date: dt.date, tracking_numbers: Sequence[str]) -> Route:
    """Make a driver's route for a day the given stops, in order, replacing
    whatever was posted before. Every stop must be one of the brand's
    shipments, each once; otherwise nothing changes. A stop already marked
    completed keeps that mark if it stays on the route, and the visit the
    missed-scan rule is following.
    """
    repeated = sorted(n for n, count in Counter(tracking_numbers).items() if count > 1)
    if repeated:
        raise ValueError("A shipment appears twice on the route: " + ", ".join(repeated))
    with transaction.atomic():
        shipments = {
            s.tracking_number: s
            for s in Shipment.objects.filter(brand=brand, tracking_number__in=set(tracking_numbers)).only(
                "pk", "tracking_number"
            )
        }
        unknown = [(i, n) for i, n in enumerate(tracking_numbers) if n not in shipments]
        if unknown:
            raise UnknownStops(unknown)
        driver, _ = Driver.objects.get_or_create(brand=brand, ref=driver_ref)
        route, _ = Route.objects.get_or_create(driver=driver, date=date)
        route = Route.objects.select_for_update().get(pk=route.pk)
        # What a stop has seen (its completion, the driver's visit the
        # missed-scan rule is following) stays with it when it stays on the
        # route, whatever its new place.
        kept = {row.pop("shipment_id"): row for row in route.stops.values("shipment_id", *STOP_HISTORY)}
        route.stops.all().delete()
        Stop.objects.bulk_create(
            Stop(
                route=route,
                shipment=shipments[number],
                sequence=sequence,
                **kept.get(shipments[number].pk, {}),
            )
            for sequence, number in enumerate(tracking_numbers, start=1)
        )
        # Pages of parcels on the route before or after show the stops ahead
        # and the driver, which just changed: as for a staff edit of the
        # route's stops, their versions move on.
        affected = set(kept) | {s.pk for s in shipments.values()}
        drop_computed_eta(set(kept) - {s.pk for s in shipments.values()})
        bump_and_announce(Shipment.objects.filter(pk__in=affected), sender=Route)
    return route
