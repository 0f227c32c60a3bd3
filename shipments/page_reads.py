"""The tracking page's reads of the shipment, its brand and its timeline,
written out as SQL.

A freshly changed page is rendered on the request's path, and building these
queries with the ORM cost more CPU than running them: the shipment with
select_related("brand") took 0.83 ms of CPU a page (0.31 of it compiling the
query), the statement below and Model.from_db 0.14; the timeline's
values_list spent 0.29 ms compiling. Each statement is built once per process
from the models' metadata, and rows get the conversions from database values
that the ORM applies (dates on SQLite, for one), so the results are the
ORM's own: model instances for the shipment and its brand, tuples for the
timeline (tests/shipments/test_page_reads.py compares them).

On PostgreSQL the page reads the shipment and its timeline in one statement
(the events as a JSON array), a round trip and a statement fewer: 0.15 ms of
CPU and 0.44 ms on the clock against 0.31 and 0.64 for two.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Field

from .models import Brand, Shipment, TrackingEvent
from .selectors import TIMELINE_ORDER

TIMELINE_FIELDS = ("status", "description", "location_city", "occurred_at")

# Names come from the models' metadata, quoted; values are parameters.
_SHIPMENT_SQL = "SELECT {columns} FROM {shipment} s JOIN {brand} b ON b.{brand_pk} = s.{brand_id} WHERE s.{token} = %s"
_TIMELINE_SQL = "SELECT {columns} FROM {event} WHERE {shipment_id} = %s ORDER BY {order}"
_TIMELINE_JSON_SQL = (
    "(SELECT json_agg(json_build_array({columns}) ORDER BY {order}) FROM {event} e WHERE e.{shipment_id} = s.{pk})"
)


@dataclass(frozen=True)
class Statement:
    sql: str
    # (column index, the column as an expression, its converter functions)
    converters: tuple

    def rows(self, params: Sequence) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if not self.converters:
            return rows
        return [self._convert(row) for row in rows]

    def _convert(self, row: tuple) -> tuple:
        values = list(row)
        for index, column, functions in self.converters:
            for function in functions:
                values[index] = function(values[index], column, connection)
        return tuple(values)


def _statement(sql: str, columns: Sequence[tuple[Field, str]]) -> Statement:
    """``columns``: the selected fields, in order, each with its table alias."""
    converters = []
    for index, (field, alias) in enumerate(columns):
        column = field.get_col(alias)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            converters.append((index, column, tuple(functions)))
    return Statement(sql, tuple(converters))


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _shipment_columns() -> list[tuple[Field, str]]:
    return [(field, "s") for field in Shipment._meta.concrete_fields] + [
        (field, "b") for field in Brand._meta.concrete_fields
    ]


def _timeline_parts(prefix: str = "") -> dict:
    """The pieces of the timeline's SQL: its columns (after ``prefix``, a
    table alias and a dot) and their fields, and the order of
    selectors.timeline."""
    fields = [TrackingEvent._meta.get_field(name) for name in TIMELINE_FIELDS]
    order = ", ".join(
        prefix
        + _quote(TrackingEvent._meta.get_field(name.lstrip("-")).column)
        + (" DESC" if name.startswith("-") else "")
        for name in TIMELINE_ORDER
    )
    return {
        "fields": fields,
        "columns": ", ".join(prefix + _quote(field.column) for field in fields),
        "order": order,
        "event": _quote(TrackingEvent._meta.db_table),
        "shipment_id": _quote(TrackingEvent._meta.get_field("shipment").column),
    }


# Keyed by the database's vendor, which is what the SQL and the conversions
# depend on.
@functools.cache
def _shipment_statement(vendor: str, *, with_timeline: bool = False) -> Statement:
    columns = _shipment_columns()
    selected = ", ".join(f"{alias}.{_quote(field.column)}" for field, alias in columns)
    if with_timeline:
        timeline = _timeline_parts("e.")
        selected += ", " + _TIMELINE_JSON_SQL.format(
            columns=timeline["columns"],
            order=timeline["order"],
            event=timeline["event"],
            shipment_id=timeline["shipment_id"],
            pk=_quote(Shipment._meta.pk.column),
        )
    sql = _SHIPMENT_SQL.format(
        columns=selected,
        shipment=_quote(Shipment._meta.db_table),
        brand=_quote(Brand._meta.db_table),
        brand_pk=_quote(Brand._meta.pk.column),
        brand_id=_quote(Shipment._meta.get_field("brand").column),
        token=_quote(Shipment._meta.get_field("public_token").column),
    )
    return _statement(sql, columns)


def _shipment_from_row(row: Sequence) -> Shipment:
    shipment_names = [field.attname for field in Shipment._meta.concrete_fields]
    brand_names = [field.attname for field in Brand._meta.concrete_fields]
    split, end = len(shipment_names), len(shipment_names) + len(brand_names)
    shipment = Shipment.from_db(connection.alias, shipment_names, row[:split])
    Shipment.brand.field.set_cached_value(shipment, Brand.from_db(connection.alias, brand_names, row[split:end]))
    return shipment


def shipment_with_brand(token: str) -> Shipment | None:
    """The shipment with this public token and its brand, as
    ``select_related("brand")`` gives them, in one statement."""
    rows = _shipment_statement(connection.vendor).rows([token])
    return _shipment_from_row(rows[0]) if rows else None


def shipment_with_timeline(token: str) -> tuple[Shipment, list[tuple]] | None:
    """The shipment with this public token and its brand, and its
    timeline_rows(): one statement on PostgreSQL, two elsewhere."""
    if connection.vendor != "postgresql":
        shipment = shipment_with_brand(token)
        return (shipment, timeline_rows(shipment.pk)) if shipment is not None else None
    rows = _shipment_statement(connection.vendor, with_timeline=True).rows([token])
    if not rows:
        return None
    events = rows[0][-1] or []
    if isinstance(events, str):
        events = json.loads(events)
    # Dates come as ISO 8601 text in the connection's time zone (UTC).
    return _shipment_from_row(rows[0]), [
        (status, description, city, datetime.fromisoformat(occurred_at))
        for status, description, city, occurred_at in events
    ]


@functools.cache
def _timeline_statement(vendor: str) -> Statement:
    timeline = _timeline_parts()
    sql = _TIMELINE_SQL.format(
        columns=timeline["columns"],
        event=timeline["event"],
        shipment_id=timeline["shipment_id"],
        order=timeline["order"],
    )
    return _statement(sql, [(field, TrackingEvent._meta.db_table) for field in timeline["fields"]])


def timeline_rows(shipment_id: int) -> list[tuple]:
    """(status, description, location_city, occurred_at) of the shipment's
    events, newest first: the order of ``selectors.timeline``."""
    return _timeline_statement(connection.vendor).rows([shipment_id])
