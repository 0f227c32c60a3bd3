"""The one place that formats written-out SQL: quoting the models' own
names (``quote``, ``column``), the locking and batch reads of the event path
(``select_sql``, ``select``, ``matching``), and the batch path's bulk writes:
on PostgreSQL one statement over arrays (``unnest``), elsewhere Django's
bulk methods.

Django's ``bulk_update`` builds a CASE per field and row, and ``bulk_create``
prepares every value one by one; on a batch of a thousand events either
costs more than the statement (bench/ingest.py and bench/record_event.py
measure the batch and the single path). Arrays of plain Python values, which
psycopg adapts itself, skip both. Only quoted names from the models
(``_meta.db_table``, ``field.column``) are formatted into the SQL; every
value is a parameter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Sequence
from datetime import datetime

from django.db import connection
from django.db.models import Model
from django.db.models.fields.files import FieldFile


def insert(rows: Sequence[Model], now: datetime, *, unless_present: Sequence[str] = ()) -> None:
    """Insert rows of one model and set their primary keys; auto_now(_add)
    fields get ``now``. With ``unless_present``, the field names of one of
    the model's unique constraints, a row whose values there are already
    stored, or already given earlier in ``rows``, is left out and keeps no
    primary key."""
    if not rows:
        return
    model = type(rows[0])
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    for f in fields:
        if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False):
            for row in rows:
                setattr(row, f.attname, now)
    columns = [[_stored_value(row, f) for row in rows] for f in fields]
    plain = all(not hasattr(value, "resolve_expression") for column in columns for value in column)
    if connection.vendor != "postgresql" or not plain:
        if unless_present:
            keys = [key(row, unless_present) for row in rows]
            present = {key(row, unless_present) for row in matching(model, unless_present, keys)}
            first = {}
            for row, row_key in zip(rows, keys, strict=True):
                if row_key not in present:
                    first.setdefault(row_key, row)
            rows = list(first.values())
        model.objects.bulk_create(rows)
        return
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(model, tuple(unless_present)), columns)
        found = cursor.fetchall()
    if unless_present:
        # Only the rows inserted come back, each with its key; of rows given
        # twice, the first was inserted (unnest keeps their order).
        ids = {tuple(values): pk for pk, *values in found}
        inserted = [(row, ids.pop(key(row, unless_present), None)) for row in rows]
    else:
        # PostgreSQL returns the rows in the order unnest gave them, as
        # Django's own bulk_create relies on.
        inserted = zip(rows, [pk for (pk,) in found], strict=True)
    for row, pk in inserted:
        if pk is None:
            continue
        row.pk = pk
        row._state.adding = False
        row._state.db = connection.alias


def copy_insert(
    model: type[Model], rows: Sequence[dict], now: datetime, *, unless_present: Sequence[str]
) -> set[tuple]:
    """Insert rows given as {attname: value}, the model's defaults filling
    the other fields and ``now`` the auto_now(_add) ones, unless a row with
    the same ``unless_present`` values (a unique constraint's fields, distinct
    within ``rows``) is already stored; returns the keys of the rows
    inserted. No model instance is built: on PostgreSQL the rows go by COPY
    into a temporary table, then one INSERT … SELECT … ON CONFLICT DO
    NOTHING, inside the caller's transaction (the CSV import's batches:
    psycopg formats COPY rows in C, where ``insert``'s arrays are adapted
    value by value in Python; bench/imports.py measures both)."""
    if not rows:
        return set()
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    key_fields = [model._meta.get_field(name) for name in unless_present]
    if connection.vendor != "postgresql":
        instances = [model(**row) for row in rows]
        insert(instances, now, unless_present=unless_present)
        return {key(row, unless_present) for row in instances if row.pk is not None}
    values = [_row_values(model, row, now) for row in rows]
    table = quote(model._meta.db_table)
    names = ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        # The copy's table has the columns' types and nothing else: no
        # constraint, index or default to keep while the rows stream in.
        cursor.execute(
            f"CREATE TEMPORARY TABLE bulk_copy ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA"  # noqa: S608 - names from the models only
        )
        with cursor.cursor.copy(f"COPY bulk_copy ({names}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        cursor.execute(
            "INSERT INTO {table} ({names}) SELECT {names} FROM bulk_copy ON CONFLICT ({keys}) DO NOTHING "  # noqa: S608
            "RETURNING {keys}".format(table=table, names=names, keys=", ".join(quote(f.column) for f in key_fields))
        )
        inserted = {tuple(found) for found in cursor.fetchall()}
        # Dropped now, not at the commit: a caller's outer transaction may
        # hold several batches.
        cursor.execute("DROP TABLE bulk_copy")
    return inserted


@functools.cache
def _filling(model: type[Model]) -> tuple[list[str], frozenset[str], list, dict]:
    """The model's columns as attnames, those that take ``now``, the fields
    whose default is made per row (a token), and the other defaults, made
    once."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    now = frozenset(f.attname for f in fields if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False))
    per_row = [f for f in fields if f.has_default() and callable(f.default) and f.attname not in now]
    once = {f.attname: f.get_default() for f in fields if f not in per_row and f.attname not in now}
    return [f.attname for f in fields], now, per_row, once


def _row_values(model: type[Model], row: dict, now: datetime) -> list:
    names, at_now, per_row, once = _filling(model)
    values = {**once, **{f.attname: f.get_default() for f in per_row if f.attname not in row}, **row}
    return [now if name in at_now else values[name] for name in names]


def _stored_value(row: Model, field) -> object:
    # A file field reads as a FieldFile; its column holds the file's name.
    value = getattr(row, field.attname)
    return value.name if isinstance(value, FieldFile) else value


def key(row: Model, field_names: Sequence[str]) -> tuple:
    """The row's values of these fields (attnames for foreign keys: ids)."""
    return tuple(getattr(row, row._meta.get_field(name).attname) for name in field_names)


@functools.cache
def _insert_sql(model: type[Model], unless_present: tuple[str, ...] = ()) -> str:
    # Built once per model: every record_event goes through here.
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    returning = [model._meta.pk] + [model._meta.get_field(name) for name in unless_present]
    skip = (
        " ON CONFLICT ({}) DO NOTHING".format(", ".join(column(model, name) for name in unless_present))
        if unless_present
        else ""
    )
    return "INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}){skip} RETURNING {returning}".format(  # noqa: S608
        table=quote(model._meta.db_table),
        columns=", ".join(quote(f.column) for f in fields),
        arrays=", ".join(f"%s::{_array_type(f)}[]" for f in fields),
        skip=skip,
        returning=", ".join(quote(f.column) for f in returning),
    )


def update(rows: Sequence[Model], field_names: Sequence[str]) -> None:
    """Write these fields of rows of one model, each row its own values."""
    if not rows:
        return
    model = type(rows[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, field_names)
        return
    pk = model._meta.pk
    fields = [pk] + [model._meta.get_field(name) for name in field_names]
    sql = "UPDATE {table} AS t SET {assignments} FROM unnest({arrays}) AS v({columns}) WHERE t.{pk} = v.{pk}".format(  # noqa: S608
        table=quote(model._meta.db_table),
        assignments=", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields[1:]),
        arrays=", ".join(f"%s::{_array_type(f)}[]" for f in fields),
        columns=", ".join(quote(f.column) for f in fields),
        pk=quote(pk.column),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[getattr(row, f.attname) for row in rows] for f in fields])


def matching(model: type[Model], field_names: Sequence[str], keys: Collection[tuple]) -> list[Model]:
    """The stored rows whose ``field_names`` equal one of ``keys``, matched
    exactly (through a unique index on those fields, if there is one) rather
    than by an IN list per field."""
    if not keys:
        return []
    fields = [model._meta.get_field(name) for name in field_names]
    if connection.vendor != "postgresql":
        lookups = {f"{f.attname}__in": {each[n] for each in keys} for n, f in enumerate(fields)}
        wanted = set(keys)
        return [row for row in model.objects.filter(**lookups) if key(row, field_names) in wanted]
    where = "({columns}) IN (SELECT * FROM unnest({arrays}))".format(  # noqa: S608 - names from the models only
        columns=", ".join(f"{{{f.name}}}" for f in fields),
        arrays=", ".join(f"%s::{_array_type(f)}[]" for f in fields),
    )
    return select(model, None, where, [list(column) for column in zip(*keys, strict=True)])


def quote(name: str) -> str:
    """A table or column name, quoted for the database."""
    return connection.ops.quote_name(name)


def column(model: type[Model], name: str) -> str:
    """The quoted column of the model's field ``name``."""
    return quote(model._meta.get_field(name).column)


@functools.cache
def _array_type(field) -> str:
    # The column's type without any CHECK, as an array's element type:
    # "varchar(32)", "timestamp with time zone", "bigint".
    return re.sub(r"\s+CHECK\b.*$", "", field.db_type(connection), flags=re.IGNORECASE)


@functools.cache
def _fields(model: type[Model], field_names: frozenset[str] | None) -> list:
    return [f for f in model._meta.concrete_fields if field_names is None or f.primary_key or f.name in field_names]


@functools.cache
def columns(model: type[Model], field_names: frozenset[str] | None = None) -> tuple[list[str], list[tuple[int, list]]]:
    """The attnames of the model's concrete fields (those named, and the
    primary key, or all) in column order, as ``Model.from_db`` takes them,
    and the converters of the columns that need any (JSON, mostly)."""
    fields = _fields(model, field_names)
    converting = [(index, f.get_db_converters(connection)) for index, f in enumerate(fields)]
    return [f.attname for f in fields], [(index, found) for index, found in converting if found]


@functools.cache
def select_sql(model: type[Model], field_names: frozenset[str] | None, where: str) -> str:
    """A written-out SELECT of ``columns(model, field_names)`` from the
    model's table, for reads on the path of every event, where compiling the
    ORM's query cost more than running it. In ``where``, ``{name}`` stands
    for the quoted column of the field ``name``."""
    return "SELECT {columns} FROM {table} WHERE {where}".format(  # noqa: S608 - names from the models only
        columns=", ".join(quote(f.column) for f in _fields(model, field_names)),
        table=quote(model._meta.db_table),
        where=where.format(**{f.name: quote(f.column) for f in model._meta.concrete_fields}),
    )


def from_rows(model: type[Model], field_names: frozenset[str] | None, rows, start: int = 0) -> list[Model]:
    """Model instances of ``columns(model, field_names)``, read from each
    row from index ``start`` on; unread fields are deferred, as with
    ``only()``."""
    names, converting = columns(model, field_names)
    objects = []
    for row in rows:
        values = list(row[start : start + len(names)])
        for index, converters in converting:
            for convert in converters:
                values[index] = convert(values[index], None, connection)
        objects.append(model.from_db(connection.alias, names, values))
    return objects


def select(model: type[Model], field_names: frozenset[str] | None, where: str, params: Sequence) -> list[Model]:
    """The rows ``select_sql`` finds, as model instances."""
    with connection.cursor() as cursor:
        cursor.execute(select_sql(model, field_names, where), params)
        return from_rows(model, field_names, cursor.fetchall())
