"""The tracking page's two ORM reads, written out as SQL.

A freshly changed page is rendered on the request's path, and building these
queries with the ORM cost more CPU than running them: the shipment with
select_related("brand") took 0.83 ms of CPU a page (0.31 of it compiling the
query), the statement below and Model.from_db 0.14; the timeline's
values_list spent 0.29 ms compiling. Each statement is built once per process
from the models' metadata, and rows get the conversions from database values
that the ORM applies (dates on SQLite, for one), so the results are the
ORM's own: model instances for the shipment and its brand, tuples for the
timeline (tests/shipments/test_page_reads.py compares them).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Field

from .models import Brand, Shipment, TrackingEvent
from .selectors import TIMELINE_ORDER

TIMELINE_FIELDS = ("status", "description", "location_city", "occurred_at")

# Names come from the models' metadata, quoted; values are parameters.
_SHIPMENT_SQL = "SELECT {columns} FROM {shipment} s JOIN {brand} b ON b.{brand_pk} = s.{brand_id} WHERE s.{token} = %s"
_TIMELINE_SQL = "SELECT {columns} FROM {event} WHERE {shipment_id} = %s ORDER BY {order}"


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


# Keyed by the database's vendor, which is what the SQL and the conversions
# depend on.
@functools.cache
def _shipment_statement(vendor: str) -> Statement:
    quote = connection.ops.quote_name
    shipment_fields, brand_fields = Shipment._meta.concrete_fields, Brand._meta.concrete_fields
    columns = [(field, "s") for field in shipment_fields] + [(field, "b") for field in brand_fields]
    sql = _SHIPMENT_SQL.format(
        columns=", ".join(f"{alias}.{quote(field.column)}" for field, alias in columns),
        shipment=quote(Shipment._meta.db_table),
        brand=quote(Brand._meta.db_table),
        brand_pk=quote(Brand._meta.pk.column),
        brand_id=quote(Shipment._meta.get_field("brand").column),
        token=quote(Shipment._meta.get_field("public_token").column),
    )
    return _statement(sql, columns)


def shipment_with_brand(token: str) -> Shipment | None:
    """The shipment with this public token and its brand, as
    ``select_related("brand")`` gives them, in one statement."""
    rows = _shipment_statement(connection.vendor).rows([token])
    if not rows:
        return None
    shipment_names = [field.attname for field in Shipment._meta.concrete_fields]
    brand_names = [field.attname for field in Brand._meta.concrete_fields]
    row, split = rows[0], len(shipment_names)
    shipment = Shipment.from_db(connection.alias, shipment_names, row[:split])
    Shipment.brand.field.set_cached_value(shipment, Brand.from_db(connection.alias, brand_names, row[split:]))
    return shipment


@functools.cache
def _timeline_statement(vendor: str) -> Statement:
    quote = connection.ops.quote_name
    fields = [TrackingEvent._meta.get_field(name) for name in TIMELINE_FIELDS]
    order = ", ".join(
        f"{quote(TrackingEvent._meta.get_field(name.lstrip('-')).column)}{' DESC' if name.startswith('-') else ''}"
        for name in TIMELINE_ORDER
    )
    sql = _TIMELINE_SQL.format(
        columns=", ".join(quote(field.column) for field in fields),
        event=quote(TrackingEvent._meta.db_table),
        shipment_id=quote(TrackingEvent._meta.get_field("shipment").column),
        order=order,
    )
    return _statement(sql, [(field, TrackingEvent._meta.db_table) for field in fields])


def timeline_rows(shipment_id: int) -> list[tuple]:
    """(status, description, location_city, occurred_at) of the shipment's
    events, newest first: the order of ``selectors.timeline``."""
    return _timeline_statement(connection.vendor).rows([shipment_id])
