"""What the tracking page reads: the shipment and its brand, its timeline,
its stop on a day's route and its open alerts (written out as SQL), and the
delivery's rating. The look-up's reads are in pages.lookup_reads.

A freshly changed page is rendered on the request's path, and building the
tracking page's queries with the ORM cost more CPU than running them
(bench/page_profile.py shows where a fresh render spends its time): the
shipment with select_related("brand"), the timeline's values_list and the
stop's correlated subquery each took longer to compile than to run. Each
statement is built once per process from the models' metadata (the quoting
helpers of shipments.bulk), and rows get the conversions from database
values that the ORM applies (dates on SQLite, for one), so the results are
the ORM's own: model instances for the shipment and its brand, tuples for
the rest (tests/pages/test_reads.py compares them with their ORM twins).

On PostgreSQL, page_rows() is one statement, the timeline, the stops and
the open alerts' kinds coming as JSON arrays: three round trips and
statements fewer than on other databases, which bench/page_profile.py and
bench/tracking_page.py measure.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection
from django.db.models import Field
from django.utils import timezone

from shipments.bulk import column, quote
from shipments.models import Alert, AlertState, Brand, DeliveryRating, Driver, Route, Shipment, Stop, TrackingEvent
from shipments.selectors import TIMELINE_ORDER

TIMELINE_FIELDS = ("status", "description", "location_city", "occurred_at", "substatus")

# Names come from the models' metadata, quoted; values are parameters.
_SHIPMENT_SQL = "SELECT {columns} FROM {shipment} s JOIN {brand} b ON b.{brand_pk} = s.{brand_id} WHERE s.{token} = %s"
_TIMELINE_SQL = "SELECT {columns} FROM {event} WHERE {shipment_id} = %s ORDER BY {order}"
_TIMELINE_JSON_SQL = "(SELECT json_agg(json_build_array({columns}) ORDER BY {order}) FROM {event} e WHERE {where})"
# The shipment's stops on the routes of some days, newest route first: the
# route's day, whether the stop is done, its driver's last position, and how
# many stops before it are still to be done (a stop ahead is done once its
# parcel has had its delivery attempt, whatever the driver app says).
_STOPS_COLUMNS = """route.{date}, stop.{completed_at} IS NOT NULL, driver.{lat}, driver.{lng}, driver.{seen_at},
       (SELECT COUNT(*) FROM {stop} ahead JOIN {shipment} other ON other.{shipment_pk} = ahead.{shipment_id}
         WHERE ahead.{route_id} = stop.{route_id} AND ahead.{sequence} < stop.{sequence}
           AND ahead.{completed_at} IS NULL{done})"""
_STOPS_FROM = """{stop} stop JOIN {route} route ON route.{route_pk} = stop.{route_id}
  JOIN {driver} driver ON driver.{driver_pk} = route.{driver_id}
 WHERE stop.{shipment_id} = {shipment} AND route.{date} IN ({days})"""
_STOPS_SQL = "SELECT {columns} FROM {source} ORDER BY route.{route_pk} DESC"
# The kinds of the shipment's open alerts (one open alert per kind: the
# partial unique index on (shipment, kind) answers it).
_ALERTS_JSON_SQL = (
    "(SELECT json_agg(a.{kind}) FROM {alert} a WHERE a.{shipment_id} = s.{shipment_pk} AND a.{state} = %s)"
)
_STOPS_JSON_SQL = (
    "CASE WHEN s.{status} IN ({statuses}) THEN"
    " (SELECT json_agg(json_build_array({columns}) ORDER BY route.{route_pk} DESC) FROM {source}) END"
)


@functools.cache
def _preparing_cursor_class():
    # Imported here: the PostgreSQL backend's module is only for PostgreSQL.
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        """Binds parameters on the server and prepares the statement on its
        connection the first time, so that PostgreSQL plans it once per
        connection rather than once per page."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparingCursor


def _prepared_cursor():
    """A cursor of Django's (queries logged and wrapped as any other) that
    prepares its statement. Planning the page's statement was most of what
    PostgreSQL spent on a freshly changed page (bench/page_profile.py);
    connections are pooled, so a statement prepared once serves many pages.

    Django has no public way to open one cursor of another class, so the
    cursor is made on the raw connection and wrapped as connection.cursor()
    wraps its own: the thread check, then the logging wrapper when queries
    are logged (DEBUG, or a test counting them), else the plain one."""
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = _preparing_cursor_class()(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


@dataclass(frozen=True)
class Statement:
    sql: str
    # (column index, the column as an expression, its converter functions)
    converters: tuple

    def rows(self, params: Sequence, *, prepared: bool = False) -> list[tuple]:
        with _prepared_cursor() if prepared else connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if not self.converters:
            return rows
        return [self._convert(row) for row in rows]

    def _convert(self, row: tuple) -> tuple:
        values = list(row)
        for index, expression, functions in self.converters:
            for function in functions:
                values[index] = function(values[index], expression, connection)
        return tuple(values)


def _statement(sql: str, columns: Sequence[tuple[Field, str]]) -> Statement:
    """``columns``: the first selected fields, in order, each with its table
    alias (columns after them are not converted)."""
    converters = []
    for index, (field, alias) in enumerate(columns):
        column = field.get_col(alias)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            converters.append((index, column, tuple(functions)))
    return Statement(sql, tuple(converters))


def _shipment_columns() -> list[tuple[Field, str]]:
    return [(field, "s") for field in Shipment._meta.concrete_fields] + [
        (field, "b") for field in Brand._meta.concrete_fields
    ]


def _timeline_parts(prefix: str = "") -> dict:
    """The pieces of the timeline's SQL: its columns (after ``prefix``, a
    table alias and a dot) and the order of selectors.timeline, its ORM
    twin."""
    order = ", ".join(
        prefix + column(TrackingEvent, name.lstrip("-")) + (" DESC" if name.startswith("-") else "")
        for name in TIMELINE_ORDER
    )
    return {
        "columns": ", ".join(prefix + column(TrackingEvent, name) for name in TIMELINE_FIELDS),
        "order": order,
        "event": quote(TrackingEvent._meta.db_table),
    }


def _stops_parts(*, shipment: str, statuses_done: int, days: int) -> dict:
    """The pieces of the stops' SQL, for the shipment whose id is the SQL
    expression ``shipment``, with placeholders for the done statuses and the
    days."""
    names = {
        "shipment_pk": quote(Shipment._meta.pk.column),
        "route_pk": quote(Route._meta.pk.column),
        "driver_pk": quote(Driver._meta.pk.column),
        "stop": quote(Stop._meta.db_table),
        "route": quote(Route._meta.db_table),
        "driver": quote(Driver._meta.db_table),
        "shipment": quote(Shipment._meta.db_table),
        "date": column(Route, "date"),
        "driver_id": column(Route, "driver"),
        "completed_at": column(Stop, "completed_at"),
        "route_id": column(Stop, "route"),
        "shipment_id": column(Stop, "shipment"),
        "sequence": column(Stop, "sequence"),
        "lat": column(Driver, "last_lat"),
        "lng": column(Driver, "last_lng"),
        "seen_at": column(Driver, "last_position_at"),
        "status": column(Shipment, "status"),
    }
    done = f" AND other.{names['status']} NOT IN ({', '.join(['%s'] * statuses_done)})" if statuses_done else ""
    columns = _STOPS_COLUMNS.format(**names, done=done)
    source = _STOPS_FROM.format(**{**names, "shipment": shipment}, days=", ".join(["%s"] * days))
    return {"columns": columns, "source": source, "route_pk": names["route_pk"]}


# Keyed by the database's vendor, which is what the SQL and the conversions
# depend on.
@functools.cache
def _shipment_statement(vendor: str) -> Statement:
    return _statement(_shipment_sql(), _shipment_columns())


def _shipment_sql(extra_columns: str = "") -> str:
    return _SHIPMENT_SQL.format(
        columns=", ".join(f"{alias}.{quote(field.column)}" for field, alias in _shipment_columns()) + extra_columns,
        shipment=quote(Shipment._meta.db_table),
        brand=quote(Brand._meta.db_table),
        brand_pk=quote(Brand._meta.pk.column),
        brand_id=column(Shipment, "brand"),
        token=column(Shipment, "public_token"),
    )


@functools.cache
def _page_statement(vendor: str, statuses: int, statuses_done: int, days: int) -> Statement:
    """PostgreSQL: the shipment, its brand, its timeline and its stops."""
    timeline = _timeline_parts("e.")
    timeline_json = _TIMELINE_JSON_SQL.format(
        columns=timeline["columns"],
        order=timeline["order"],
        event=timeline["event"],
        where=f"e.{column(TrackingEvent, 'shipment')} = s.{quote(Shipment._meta.pk.column)}",
    )
    if statuses and days:
        stops = _stops_parts(shipment=f"s.{quote(Shipment._meta.pk.column)}", statuses_done=statuses_done, days=days)
        stops_json = _STOPS_JSON_SQL.format(
            status=column(Shipment, "status"), statuses=", ".join(["%s"] * statuses), **stops
        )
    else:
        stops_json = "NULL"
    alerts_json = _ALERTS_JSON_SQL.format(
        kind=column(Alert, "kind"),
        alert=quote(Alert._meta.db_table),
        shipment_id=column(Alert, "shipment"),
        shipment_pk=quote(Shipment._meta.pk.column),
        state=column(Alert, "state"),
    )
    return _statement(_shipment_sql(f", {timeline_json}, {stops_json}, {alerts_json}"), _shipment_columns())


@functools.cache
def _timeline_statement(vendor: str) -> Statement:
    timeline = _timeline_parts()
    sql = _TIMELINE_SQL.format(
        columns=timeline["columns"],
        event=timeline["event"],
        shipment_id=column(TrackingEvent, "shipment"),
        order=timeline["order"],
    )
    return _statement(sql, [(TrackingEvent._meta.get_field(name), "") for name in TIMELINE_FIELDS])


@functools.cache
def _stops_statement(vendor: str, statuses_done: int, days: int) -> Statement:
    stops = _stops_parts(shipment="%s", statuses_done=statuses_done, days=days)
    return Statement(_STOPS_SQL.format(**stops), ())


def _shipment_from_row(row: Sequence) -> Shipment:
    shipment_names = [field.attname for field in Shipment._meta.concrete_fields]
    brand_names = [field.attname for field in Brand._meta.concrete_fields]
    split, end = len(shipment_names), len(shipment_names) + len(brand_names)
    shipment = Shipment.from_db(connection.alias, shipment_names, row[:split])
    Shipment.brand.field.set_cached_value(shipment, Brand.from_db(connection.alias, brand_names, row[split:end]))
    return shipment


def _aware(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def _stop_row(row: Sequence) -> tuple:
    day, completed, lat, lng, seen_at, ahead = row
    return (
        date.fromisoformat(day) if isinstance(day, str) else day,
        bool(completed),
        lat,
        lng,
        _aware(seen_at),
        int(ahead),
    )


def _json(value) -> list:
    return json.loads(value) if isinstance(value, str) else (value or [])


def shipment_with_brand(token: str) -> Shipment | None:
    """The shipment with this public token and its brand, as
    ``select_related("brand")`` gives them, in one statement."""
    rows = _shipment_statement(connection.vendor).rows([token])
    return _shipment_from_row(rows[0]) if rows else None


def timeline_rows(shipment_id: int) -> list[tuple]:
    """(status, description, location_city, occurred_at) of the shipment's
    events, newest first: the order of ``selectors.timeline``."""
    return _timeline_statement(connection.vendor).rows([shipment_id])


def stop_rows(shipment_id: int, *, days: Sequence[date], statuses_done: Sequence[str]) -> list[tuple]:
    """The shipment's stops on the routes of these days, newest route
    first: (route date, done, driver's lat, lng and position time, stops
    before it still to be done, counting a stop whose parcel has one of
    ``statuses_done`` as done)."""
    statement = _stops_statement(connection.vendor, len(statuses_done), len(days))
    return [_stop_row(row) for row in statement.rows([*statuses_done, shipment_id, *days])]


def open_alert_kinds(shipment_ids: Sequence[int]) -> dict[int, frozenset[str]]:
    """The kinds of each of these shipments' open alerts (those with none
    are left out), in one query."""
    kinds: dict[int, set[str]] = {}
    rows = Alert.objects.filter(shipment_id__in=shipment_ids, state=AlertState.OPEN).values_list("shipment_id", "kind")
    for shipment_id, kind in rows:
        kinds.setdefault(shipment_id, set()).add(kind)
    return {shipment_id: frozenset(found) for shipment_id, found in kinds.items()}


@dataclass(frozen=True)
class PageRows:
    shipment: Shipment
    timeline: list[tuple]  # as timeline_rows()
    stops: list[tuple]  # as stop_rows(), or [] when the status shows no driver
    alerts: frozenset[str] = frozenset()  # the kinds of its open alerts


def page_rows(
    token: str, *, stops_for: Sequence[str], days: Sequence[date], statuses_done: Sequence[str]
) -> PageRows | None:
    """The shipment with this public token, its brand, its timeline, the
    kinds of its open alerts and, when its status is one of ``stops_for``,
    its stop_rows(): one statement on PostgreSQL, up to four elsewhere."""
    if connection.vendor != "postgresql":
        shipment = shipment_with_brand(token)
        if shipment is None:
            return None
        wanted = days and shipment.status in stops_for
        stops = stop_rows(shipment.pk, days=days, statuses_done=statuses_done) if wanted else []
        alerts = open_alert_kinds([shipment.pk]).get(shipment.pk, frozenset())
        return PageRows(shipment, timeline_rows(shipment.pk), stops, alerts)
    if not (stops_for and days):
        stops_for, statuses_done, days = [], [], []
    statement = _page_statement(connection.vendor, len(stops_for), len(statuses_done), len(days))
    rows = statement.rows(
        [*stops_for, *statuses_done, *days, AlertState.OPEN.value, token],
        prepared=settings.DATABASE_PREPARED_STATEMENTS,
    )
    if not rows:
        return None
    *_, events, stops, alerts = rows[0]
    return PageRows(
        _shipment_from_row(rows[0]),
        # Dates come as ISO 8601 text, in the connection's time zone (UTC).
        [
            (status, text, city, datetime.fromisoformat(at), substatus)
            for status, text, city, at, substatus in _json(events)
        ],
        [_stop_row(row) for row in _json(stops)],
        frozenset(_json(alerts)),
    )


def rating_of(shipment: Shipment) -> DeliveryRating | None:
    """The delivery's rating, if the customer left one."""
    return DeliveryRating.objects.filter(shipment=shipment).first()
