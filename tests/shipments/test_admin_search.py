"""The admin's search over shipments (shipments/admin_search.py): partial
names, postcodes with or without their space, email prefixes, tracking
numbers, within the staff user's brands; and the trigram migration that
serves it on PostgreSQL (and does nothing on SQLite)."""

import importlib

import pytest
from django.db import connection
from django.db.migrations.state import ProjectState

from shipments import admin_search

LIST = "/admin/shipments/shipment/"
MIGRATION = importlib.import_module("shipments.migrations.0008_search_trigrams")
on_postgres = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL only")


@pytest.fixture
def people(make_shipment, other_brand):
    return {
        "ada": make_shipment(
            tracking_number="LMADA001", recipient_name="Ada Lovelace", destination_postcode="SW1A 1AA"
        ),
        "grace": make_shipment(
            tracking_number="LMGRC002",
            recipient_name="Grace Hopper",
            recipient_email="grace.hopper@navy.example",
            recipient_phone="+447700900999",
            destination_postcode="N1 9GU",
            order_ref="ORD-77",
        ),
        # Another brand's Ada, at the same postcode: never found.
        "theirs": make_shipment(
            tracking_number="LMADA999",
            for_brand=other_brand,
            recipient_name="Ada Lovelace",
            destination_postcode="SW1A 1AA",
            recipient_email="ada@example.com",
        ),
    }


def found(client, term) -> set[str]:
    response = client.get(LIST, {"q": term})
    assert response.status_code == 200
    return {s.tracking_number for s in response.context["cl"].result_list}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("lovel", {"LMADA001"}),
        ("LOVELACE", {"LMADA001"}),
        ("ada love", {"LMADA001"}),
        ("SW1A", {"LMADA001"}),
        ("sw1a 1aa", {"LMADA001"}),
        ("SW1A1AA", {"LMADA001"}),
        ("sw1a1", {"LMADA001"}),
        ("ada@", {"LMADA001"}),
        ("grace.hop", {"LMGRC002"}),
        ("navy.example", set()),  # the start of an address, not any part of it
        ("ADA00", {"LMADA001"}),
        ("LMGRC002", {"LMGRC002"}),
        ("ORD-77", {"LMGRC002"}),
        ("ORD-7", set()),  # order references are exact
        ("07700 900999", {"LMGRC002"}),
        ("nobody", set()),
    ],
)
def test_the_shipment_list_finds_partial_names_postcodes_email_prefixes_and_numbers(
    agent_client, people, term, expected
):
    assert found(agent_client, term) == expected


@pytest.mark.parametrize(
    ("term", "compact"),
    [
        ("SW1A", None),  # short enough to match as it is
        ("sw1a1", "SW1A1"),
        ("SW1A1AA", "SW1A1AA"),
        ("1012AB", "1012AB"),
        ("K1A0B1AAAA", "K1A0B1AAAA"),
        ("K1A0B1AAAAA", None),  # past ten characters
        ("1234567", None),  # digits only: nothing to leave out
        ("LOVELACE", None),  # no digit: not a postcode
        ("SW1A 1AA", None),  # has its space: matched term by term
        ("SW1A-1AA", None),
        ("ＳＷ１Ａ１ＡＡ", None),  # full-width
    ],
)
def test_what_counts_as_a_postcode_without_its_space(term, compact):
    assert admin_search.compact_postcode(term) == compact


def test_the_search_fields_reach_through_a_path():
    assert admin_search.search_fields("shipment__")[:3] == [
        "shipment__tracking_number",
        "shipment__recipient_name",
        "^shipment__recipient_email",
    ]
    assert "=shipment__order_ref" in admin_search.search_fields("shipment__")


def run_migration(direction: str) -> None:
    state = ProjectState()
    operations = MIGRATION.Migration.operations
    with connection.schema_editor(atomic=False) as editor:
        for operation in operations if direction == "forwards" else reversed(operations):
            getattr(operation, f"database_{direction}")("shipments", editor, state, state)


def trigram_indexes() -> set[str]:
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'shipments_shipment'")
        return {name for (name,) in cursor.fetchall()} & set(MIGRATION.INDEXES)


@pytest.mark.django_db(transaction=True)
def test_the_migration_goes_both_ways_and_is_a_no_op_on_sqlite():
    expected = set(MIGRATION.INDEXES) if connection.vendor == "postgresql" else set()
    assert trigram_indexes() == expected
    run_migration("backwards")
    assert trigram_indexes() == set()
    run_migration("forwards")
    assert trigram_indexes() == expected


@pytest.mark.postgres
@on_postgres
@pytest.mark.parametrize(
    ("term", "index"),
    [
        ("lovel", "shipment_name_trgm"),
        ("ada@exa", "shipment_email_trgm"),
        ("SW1A1AA", "shipment_postcode_compact_trgm"),
        ("SW1A", "shipment_postcode_trgm"),
        ("ADA00", "shipment_tracking_trgm"),
    ],
)
def test_postgres_can_answer_each_search_from_its_index(admin_client, people, term, index):
    # With sequential and plain index scans off, the planner takes a bitmap
    # scan of an index wherever one matches the WHERE clause's expression,
    # for every branch of the OR or for none: a plan naming the index and
    # no sequential scan shows it can. A superuser's list, so that the
    # brand scoping's own index does not stand in for the search's.
    response = admin_client.get(LIST, {"q": term})
    queryset = response.context["cl"].queryset
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off; SET enable_indexscan = off")
        try:
            plan = queryset.explain()
        finally:
            cursor.execute("RESET enable_seqscan; RESET enable_indexscan")
    assert index in plan and "Seq Scan on shipments_shipment" not in plan, plan
