"""Bulk writes of the batch path, on whichever database the suite runs."""

from datetime import timedelta

from django.utils import timezone

from shipments import bulk
from shipments.models import EventSource, Shipment, TrackingEvent
from tests.conftest import T0


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


def test_matching_ids_matches_whole_keys_not_each_field(make_shipment):
    a, b = make_shipment(), make_shipment()
    bulk.insert(rows([a, b], "x"), timezone.now())  # (a, x0) and (b, x1)
    wanted = {(a.pk, "api", "x0"), (a.pk, "api", "x1"), (b.pk, "driver", "x1")}
    found = bulk.matching_ids(TrackingEvent, ["shipment", "source", "external_id"], wanted)
    assert [TrackingEvent.objects.get(pk=pk).external_id for pk in found] == ["x0"]
    assert bulk.matching_ids(TrackingEvent, ["shipment", "source", "external_id"], set()) == []
