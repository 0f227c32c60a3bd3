"""Bulk writes of the batch path, on whichever database the suite runs."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from notifications.models import BrandNotificationSettings
from shipments import bulk, services
from shipments.models import EventSource, Shipment, TrackingEvent
from tests.conftest import T0, event


def rows(shipments, prefix):
    return [
        TrackingEvent(
            shipment=s, occurred_at=T0, status="in_transit", source=EventSource.API, external_id=f"{prefix}{n}"
        )
        for n, s in enumerate(shipments)
    ]


def test_insert_sets_keys_and_creation_times(make_shipment):
    shipments = [make_shipment() for _ in range(3)]
    now = timezone.now()
    new = rows(shipments, "e")
    bulk.insert(new, now)
    stored = {e.pk: e for e in TrackingEvent.objects.all()}
    assert [stored[r.pk].external_id for r in new] == ["e0", "e1", "e2"]
    assert all(stored[r.pk].shipment_id == r.shipment_id for r in new)
    assert all(abs(stored[r.pk].received_at - now) < timedelta(seconds=5) for r in new)


def test_update_writes_each_rows_own_values_including_none(make_shipment):
    a, b = make_shipment(), make_shipment()
    a.status, a.delivered_at, a.version = "delivered", T0 + timedelta(hours=3), 7
    b.status, b.delivered_at, b.version = "exception", None, 9
    bulk.update([a, b], ["status", "delivered_at", "version"])
    fresh = {s.pk: s for s in Shipment.objects.all()}
    assert (fresh[a.pk].status, fresh[a.pk].delivered_at, fresh[a.pk].version) == ("delivered", a.delivered_at, 7)
    assert (fresh[b.pk].status, fresh[b.pk].delivered_at, fresh[b.pk].version) == ("exception", None, 9)
    assert fresh[a.pk].recipient_name == "Ada Lovelace"  # other fields untouched


def test_matching_matches_whole_keys_not_each_field(make_shipment):
    a, b = make_shipment(), make_shipment()
    bulk.insert(rows([a, b], "x"), timezone.now())  # (a, x0) and (b, x1)
    wanted = {(a.pk, "api", "x0"), (a.pk, "api", "x1"), (b.pk, "driver", "x1")}
    found = bulk.matching(TrackingEvent, ["shipment", "source", "external_id"], wanted)
    assert [(e.shipment_id, e.external_id) for e in found] == [(a.pk, "x0")]
    assert found[0].get_deferred_fields() == set()
    assert bulk.matching(TrackingEvent, ["shipment", "source", "external_id"], set()) == []


def test_insert_unless_present_leaves_out_the_rows_already_stored(make_shipment):
    a, b = make_shipment(), make_shipment()
    first = rows([a, b], "x")  # (a, x0) and (b, x1)
    bulk.insert(first[:1], timezone.now())
    again = rows([a, b], "x") + rows([b], "y")  # (a, x0) stored; (b, x1) and (b, y0) new
    bulk.insert(again, timezone.now(), unless_present=["shipment", "source", "external_id"])
    assert again[0].pk is None and again[0]._state.adding
    assert all(row.pk is not None and not row._state.adding for row in again[1:])
    stored = {(e.shipment_id, e.external_id): e.pk for e in TrackingEvent.objects.all()}
    assert stored == {(a.pk, "x0"): first[0].pk, (b.pk, "x1"): again[1].pk, (b.pk, "y0"): again[2].pk}


def test_insert_unless_present_inserts_a_key_given_twice_once(make_shipment):
    a = make_shipment()
    twice = rows([a], "x") + rows([a], "x") + rows([a], "y")  # (a, x0), (a, x0) again, (a, y0)
    bulk.insert(twice, timezone.now(), unless_present=["shipment", "source", "external_id"])
    assert twice[0].pk is not None and twice[1].pk is None and twice[2].pk is not None
    assert sorted(TrackingEvent.objects.values_list("pk", flat=True)) == sorted([twice[0].pk, twice[2].pk])


def test_copy_insert_stores_what_the_orms_create_stores(brand, other_brand, make_shipment):
    make_shipment("TAKEN")
    now = timezone.now()
    given = {
        "recipient_name": "Ada Lovelace",
        "recipient_phone": "+447700900123",
        "destination_city": "London",
        "promised_window_start": T0,
        "promised_window_end": T0 + timedelta(hours=4),
    }
    rows = [
        {"brand_id": brand.pk, "tracking_number": "NEW1", **given},
        {"brand_id": brand.pk, "tracking_number": "TAKEN", "recipient_name": "Someone Else"},
        {"brand_id": other_brand.pk, "tracking_number": "TAKEN", **given},
    ]
    inserted = bulk.copy_insert(Shipment, rows, now, unless_present=("brand", "tracking_number"))
    assert inserted == {(brand.pk, "NEW1"), (other_brand.pk, "TAKEN")}
    assert Shipment.objects.get(brand=brand, tracking_number="TAKEN").recipient_name == "Ada Lovelace"
    orm = Shipment.objects.create(brand=brand, tracking_number="ORM1", **given)
    copied = Shipment.objects.get(brand=brand, tracking_number="NEW1")
    differing = {"id", "tracking_number", "public_token", "created_at", "updated_at"}
    assert {k: v for k, v in fields_of(copied).items() if k not in differing} == {
        k: v for k, v in fields_of(orm).items() if k not in differing
    }
    assert abs(copied.created_at - now) < timedelta(seconds=5) and abs(copied.updated_at - now) < timedelta(seconds=5)
    assert len(copied.public_token) == len(orm.public_token) and copied.public_token != orm.public_token
    # Twice in one transaction: the copy's table does not outlive its batch.
    assert bulk.copy_insert(Shipment, rows[:1], now, unless_present=("brand", "tracking_number")) == set()


needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="written-out reads run on PostgreSQL (the ORM elsewhere)"
)


def fields_of(obj):
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


@needs_postgresql
def test_select_reads_every_field_as_the_orm_does(make_shipment):
    shipment = make_shipment()
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    settings_row = BrandNotificationSettings.objects.create(
        brand=shipment.brand, sms_statuses=["delivered"], email_statuses=[]
    )
    [read] = bulk.select(Shipment, None, "{id} = %s", [shipment.pk])
    assert fields_of(read) == fields_of(Shipment.objects.get(pk=shipment.pk))
    assert read.get_deferred_fields() == set()
    # A JSON column goes through the field's converter, as in the ORM.
    [read_settings] = bulk.select(BrandNotificationSettings, None, "{brand} = %s", [shipment.brand_id])
    assert read_settings.sms_statuses == ["delivered"]
    assert fields_of(read_settings) == fields_of(BrandNotificationSettings.objects.get(pk=settings_row.pk))


@needs_postgresql
def test_select_of_named_fields_defers_the_others(make_shipment):
    first, second = make_shipment(), make_shipment()
    where = "{tracking_number} = ANY(%s) ORDER BY {id} DESC"
    found = bulk.select(
        Shipment, frozenset({"status", "tracking_number"}), where, [[first.tracking_number, second.tracking_number]]
    )
    assert [s.pk for s in found] == [second.pk, first.pk]
    assert found[0].tracking_number == second.tracking_number
    assert "recipient_name" in found[0].get_deferred_fields()
    assert {"id", "status", "tracking_number"}.isdisjoint(found[0].get_deferred_fields())


def loaded_fields_of(obj):
    deferred = obj.get_deferred_fields()
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields if f.attname not in deferred}


def test_the_services_locking_reads_give_what_the_orm_gives(brand, other_brand, make_shipment):
    from django.db import transaction

    first, second = make_shipment(), make_shipment()
    make_shipment(tracking_number=first.tracking_number, for_brand=other_brand)
    services.record_event(shipment_id=first.pk, event=event("delivered"))
    with transaction.atomic():
        locked = services._locked_shipment(first.pk)
        assert fields_of(locked) == fields_of(Shipment.objects.select_for_update().get(pk=first.pk))
        assert locked.get_deferred_fields() == set()

        numbers = {first.tracking_number, second.tracking_number, "no-such-number"}
        found = services._locked_by_number(brand, numbers)
        expected = list(
            Shipment.objects.select_for_update()
            .filter(brand=brand, tracking_number__in=numbers)
            .only(*services.BATCH_FIELDS)
            .order_by("pk")
        )
        assert [s.pk for s in found] == [s.pk for s in expected] == [first.pk, second.pk]
        assert [loaded_fields_of(s) for s in found] == [loaded_fields_of(s) for s in expected]
        assert [s.get_deferred_fields() for s in found] == [s.get_deferred_fields() for s in expected]
    with pytest.raises(Shipment.DoesNotExist):
        services._locked_shipment(second.pk + 1000)
