"""The tracking page's hand-written reads (shipments/page_reads.py) give
what the ORM gives, on SQLite and PostgreSQL alike."""

import pytest
from django.db import connection
from django.forms.models import model_to_dict

from shipments import page_reads, services
from shipments.models import Shipment
from shipments.selectors import timeline
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


def test_shipment_with_timeline_in_one_statement_on_postgresql(shipment, django_assert_num_queries):
    services.record_events(
        shipment_id=shipment.pk,
        events=[
            event("in_transit", 10, description='Zürich hub: "sorted" <fast> ☃', location_city="Zürich"),
            event("info_received", 0, description=""),
            event("out_for_delivery", 30),
        ],
    )
    expected = Shipment.objects.select_related("brand").get(pk=shipment.pk)
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        found, rows = page_reads.shipment_with_timeline(shipment.public_token)
    assert fields_of(found) == fields_of(expected) and fields_of(found.brand) == fields_of(expected.brand)
    assert rows == list(timeline(shipment).values_list(*page_reads.TIMELINE_FIELDS))


def test_shipment_with_timeline_without_events_or_shipment(shipment):
    found, rows = page_reads.shipment_with_timeline(shipment.public_token)
    assert found.pk == shipment.pk and rows == []
    assert page_reads.shipment_with_timeline("no-such-token") is None
