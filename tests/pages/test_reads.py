"""The tracking page's hand-written reads (pages/reads.py) give
what the ORM gives, on SQLite and PostgreSQL alike."""

from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.utils import timezone

from pages import reads as page_reads
from shipments import alerts, services
from shipments.models import Driver, Route, Shipment, Stop
from shipments.selectors import timeline
from shipments.statuses import STOP_DONE
from tests.conftest import event

pytestmark = pytest.mark.django_db


def fields_of(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_shipment_with_brand_is_what_select_related_gives(shipment, django_assert_num_queries):
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 5))
    expected = Shipment.objects.select_related("brand").get(pk=shipment.pk)
    with django_assert_num_queries(1):
        found = page_reads.shipment_with_brand(shipment.public_token)
        assert fields_of(found) == fields_of(expected)
        assert fields_of(found.brand) == fields_of(expected.brand)
    assert found.delivered_at.tzinfo is not None and found._state.adding is False
    assert model_to_dict(found) == model_to_dict(expected)


def test_an_unknown_token_finds_nothing(db):
    assert page_reads.shipment_with_brand("no-such-token") is None


def test_timeline_rows_are_the_selectors_timeline(shipment):
    services.record_events(
        shipment_id=shipment.pk,
        events=[
            event("in_transit", 10, description="Hub", location_city="Leeds"),
            event("info_received", 0),
            event("in_transit", 10, external_id="same-time", description="Same minute"),
            event("out_for_delivery", 30),
        ],
    )
    rows = page_reads.timeline_rows(shipment.pk)
    assert rows == list(timeline(shipment).values_list(*page_reads.TIMELINE_FIELDS))
    assert len(rows) == 4 and all(row[3].tzinfo is not None for row in rows)


def page_of(shipment, **overrides):
    utc_today = timezone.now().astimezone(UTC).date()
    arguments = {
        "stops_for": ["out_for_delivery", "failed_attempt"],
        "days": [utc_today - timedelta(days=1), utc_today, utc_today + timedelta(days=1)],
        "statuses_done": [status.value for status in STOP_DONE],
        **overrides,
    }
    return page_reads.page_rows(shipment.public_token, **arguments)


def test_page_rows_in_one_statement_on_postgresql(brand, make_shipment, django_assert_num_queries):
    first, shipment, third = make_shipment(), make_shipment(), make_shipment()
    services.record_events(
        shipment_id=shipment.pk,
        events=[
            event("in_transit", 10, description='Zürich hub: "sorted" <fast> ☃', location_city="Zürich"),
            event("info_received", 0, description=""),
            event("out_for_delivery", 30),
        ],
    )
    driver = Driver.objects.create(
        brand=brand, ref="drv-1", last_lat=51.50123456789, last_lng=-0.1, last_position_at=timezone.now()
    )
    yesterday = Route.objects.create(driver=driver, date=timezone.localdate() - timedelta(days=1))
    today = Route.objects.create(driver=driver, date=timezone.localdate())
    Stop.objects.create(route=yesterday, shipment=shipment, sequence=1)
    Stop.objects.create(route=today, shipment=first, sequence=1)
    Stop.objects.create(route=today, shipment=shipment, sequence=2, completed_at=timezone.now())
    Stop.objects.create(route=today, shipment=third, sequence=3)
    expected = Shipment.objects.select_related("brand").get(pk=shipment.pk)

    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 4):
        page = page_of(shipment)
    assert fields_of(page.shipment) == fields_of(expected) and fields_of(page.shipment.brand) == fields_of(
        expected.brand
    )
    assert page.timeline == list(timeline(shipment).values_list(*page_reads.TIMELINE_FIELDS))
    driver.refresh_from_db()
    position = (driver.last_lat, driver.last_lng, driver.last_position_at)
    assert page.stops == [
        (today.date, True, *position, 1),  # the newest route first; the first stop is still to do
        (yesterday.date, False, *position, 0),
    ]
    assert page.stops == page_reads.stop_rows(
        shipment.pk, days=[today.date, yesterday.date], statuses_done=[status.value for status in STOP_DONE]
    )


def test_page_rows_without_events_stops_or_shipment(shipment, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):  # no stop query for a status that shows no driver
        page = page_of(shipment)
    assert page.shipment.pk == shipment.pk and page.timeline == [] and page.stops == []
    assert page_of(shipment, stops_for=["pending"]).stops == []  # on no route
    assert page_reads.page_rows("no-such-token", stops_for=[], days=[timezone.localdate()], statuses_done=[]) is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.parametrize("prepared", [True, False])
def test_the_page_statement_is_prepared_on_its_connection_unless_turned_off(make_shipment, settings, prepared):
    settings.DATABASE_PREPARED_STATEMENTS = prepared
    shipment, other = make_shipment(), make_shipment()
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 1, description="Scanned"))

    def prepared_page_statements():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%json_agg%%'")
            return cursor.fetchone()[0]

    before = prepared_page_statements()
    first = page_of(shipment)
    second = page_of(other)
    # Prepared or not, the same rows: the second page reuses the statement
    # with its own parameters.
    assert first.shipment.pk == shipment.pk and [row[1] for row in first.timeline] == ["Scanned"]
    assert second.shipment.pk == other.pk and second.timeline == []
    assert prepared_page_statements() - before == (1 if prepared else 0)
    assert page_reads.page_rows("no-such-token", stops_for=[], days=[], statuses_done=[]) is None


def orm_stop_rows(shipment_id, *, days, statuses_done):
    """stop_rows() as the ORM would read it, one query per stop ahead."""
    rows = []
    stops = Stop.objects.filter(shipment_id=shipment_id, route__date__in=days).select_related("route__driver")
    for stop in stops.order_by("-route_id"):
        driver = stop.route.driver
        ahead = (
            Stop.objects.filter(route_id=stop.route_id, sequence__lt=stop.sequence, completed_at__isnull=True)
            .exclude(shipment__status__in=statuses_done)
            .count()
        )
        rows.append(
            (
                stop.route.date,
                stop.completed_at is not None,
                driver.last_lat,
                driver.last_lng,
                driver.last_position_at,
                ahead,
            )
        )
    return rows


def test_stop_rows_are_what_the_orm_reads(brand, make_shipment):
    parcels = [make_shipment() for _ in range(5)]
    services.record_event(shipment_id=parcels[1].pk, event=event("delivered", 1))
    services.record_event(shipment_id=parcels[2].pk, event=event("failed_attempt", 1))
    seen = timezone.now()
    driver = Driver.objects.create(brand=brand, ref="d1", last_lat=51.5, last_lng=-0.12, last_position_at=seen)
    idle = Driver.objects.create(brand=brand, ref="d2")
    today = timezone.localdate()
    route = Route.objects.create(driver=driver, date=today)
    for sequence, parcel in enumerate(parcels, start=1):
        Stop.objects.create(
            route=route, shipment=parcel, sequence=sequence, completed_at=seen if sequence == 4 else None
        )
    tomorrow = Route.objects.create(driver=idle, date=today + timedelta(days=1))
    Stop.objects.create(route=tomorrow, shipment=parcels[4], sequence=1)
    Stop.objects.create(
        route=Route.objects.create(driver=idle, date=today - timedelta(days=5)), shipment=parcels[4], sequence=1
    )

    days = [today - timedelta(days=1), today, today + timedelta(days=1)]
    for statuses_done in ([status.value for status in STOP_DONE], [], ["delivered"]):
        for parcel in parcels:
            expected = orm_stop_rows(parcel.pk, days=days, statuses_done=statuses_done)
            assert page_reads.stop_rows(parcel.pk, days=days, statuses_done=statuses_done) == expected
    assert [row[5] for row in page_reads.stop_rows(parcels[4].pk, days=days, statuses_done=[])] == [0, 3]


def test_page_rows_carry_the_kinds_of_the_open_alerts_only(make_shipment):
    shipment, other = make_shipment(), make_shipment()
    now = timezone.now()
    alerts.open_alert(shipment=shipment, kind="late", now=now)
    alerts.open_alert(shipment=shipment, kind="missed_scan", now=now)
    resolved = alerts.open_alert(shipment=shipment, kind="stuck", now=now)
    alerts.resolve_alert(alert=resolved, now=now, reason="other")
    alerts.open_alert(shipment=other, kind="customer_report", now=now)

    page = page_of(shipment)
    assert page.alerts == frozenset({"late", "missed_scan"})
    # The ORM's twin, for several shipments at once.
    kinds = page_reads.open_alert_kinds([shipment.pk, other.pk])
    assert kinds == {shipment.pk: page.alerts, other.pk: frozenset({"customer_report"})}
    assert page_of(other).alerts == frozenset({"customer_report"})
    assert page_of(make_shipment()).alerts == frozenset()
