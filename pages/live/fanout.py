"""Which open pages a change concerns: the changed parcels' own, and those
of the parcels still on the van behind them ("N stops away")."""

from __future__ import annotations

import functools

from django.db import connection

from shipments import signals
from shipments.bulk import column, quote
from shipments.models import Route, Shipment, Stop
from shipments.routes import days_that_may_be_today
from shipments.statuses import STOP_DONE, TERMINAL, Status

from .hub import CHANGED, FINAL, TIMES, position_message


def pages_changed(changes: list[signals.ShipmentChange]) -> dict[str, str]:
    """The pages a change of these shipments shows on: their own, and those
    of the parcels still on the van behind them on today's route ("N stops
    away"). At most two queries, however many shipments changed together,
    and none for what the writer already said."""
    described = [change for change in changes if change.token and change.status]
    statuses = [(change.token, change.old_status, change.status) for change in described]
    undescribed = [change.shipment_id for change in changes if not (change.token and change.status)]
    if undescribed:
        rows = Shipment.objects.filter(pk__in=undescribed).values_list("public_token", "status")
        # Unknown before: assume the stop's state may have changed.
        statuses += [(token, "", status) for token, status in rows]
    messages = {token: FINAL if status in TERMINAL else CHANGED for token, _old, status in statuses}
    # A page whose only news is its expected times is sent those, unless
    # another change in the same announcement asks it to load everything.
    times_only = {change.token for change in described if change.times_only}
    times_only -= {change.token for change in described if not change.times_only}
    for token in times_only:
        if messages[token] == CHANGED:
            messages[token] = TIMES
    # The parcels behind count the stops ahead still to be done, so their
    # pages change only when this parcel's stop becomes done or not done
    # (delivered, missed, back on the van after a miss).
    stops_moved = [
        change.shipment_id for change in described if (change.old_status in STOP_DONE) != (change.status in STOP_DONE)
    ]
    stops_moved += undescribed
    if not stops_moved:
        return messages
    for mate in tokens_on_routes_of(stops_moved):
        messages.setdefault(mate, CHANGED)
    return messages


@functools.cache
def _route_mates_sql() -> str:
    """Written out rather than built by the ORM per call: compiling the
    four-way join cost more CPU than running it, on the path of every event
    that moves a stop (bench/notify_latency.py, bench/RESULTS.md
    "Notifications")."""
    stop, route, shipment = (quote(model._meta.db_table) for model in (Stop, Route, Shipment))
    return (
        f"SELECT DISTINCT mate.{column(Shipment, 'public_token')} FROM {stop} own"  # noqa: S608 - names from the models only
        f" JOIN {route} r ON r.{column(Route, 'id')} = own.{column(Stop, 'route')}"
        f" JOIN {stop} other ON other.{column(Stop, 'route')} = r.{column(Route, 'id')}"
        f" JOIN {shipment} mate ON mate.{column(Shipment, 'id')} = other.{column(Stop, 'shipment')}"
        f" WHERE own.{column(Stop, 'shipment')} IN ({{shipments}}) AND r.{column(Route, 'date')} IN (%s, %s, %s)"
        f" AND mate.{column(Shipment, 'status')} = %s"
    )


def tokens_on_routes_of(shipment_ids: list[int]) -> list[str]:
    """The page tokens of the parcels still out for delivery on the routes
    (of the days that may be today somewhere) that these shipments are on."""
    dates = [connection.ops.adapt_datefield_value(day) for day in days_that_may_be_today()]
    sql = _route_mates_sql().format(shipments=", ".join(["%s"] * len(shipment_ids)))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*shipment_ids, *dates, Status.OUT_FOR_DELIVERY.value])
        return [token for (token,) in cursor.fetchall()]


def pages_showing_driver(driver_id: int) -> dict[str, str]:
    """The pages that show this driver, each with a message carrying the
    driver's position: the parcels still on the van on the driver's routes
    of the days that may be today. One query."""
    rows = list(
        Stop.objects.filter(
            route__driver_id=driver_id,
            route__date__in=days_that_may_be_today(),
            shipment__status=Status.OUT_FOR_DELIVERY,
        ).values_list(
            "shipment__public_token",
            "route__driver__last_lat",
            "route__driver__last_lng",
            "route__driver__last_position_at",
        )
    )
    if not rows or None in rows[0][1:]:
        return {}
    _token, lat, lng, seen_at = rows[0]
    message = position_message(lat, lng, seen_at)
    return dict.fromkeys((token for token, *_ in rows), message)
