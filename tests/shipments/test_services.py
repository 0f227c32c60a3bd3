"""record_event: the one status writer, against the real database."""

import threading
from datetime import timedelta, timezone

import pytest
import time_machine
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from shipments import services, signals
from shipments.models import Brand, EventSource, Shipment, StatusChange, TrackingEvent
from shipments.services import EventRejected, NewEvent
from shipments.statuses import TERMINAL, Status
from tests.conftest import T0, event


def test_first_event_changes_status_and_writes_one_status_change(shipment):
    recorded = services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    shipment.refresh_from_db()
    assert recorded.created
    assert shipment.status == Status.IN_TRANSIT
    change = StatusChange.objects.get(shipment=shipment)
    assert (change.old_status, change.new_status) == ("pending", "in_transit")
    assert change.event == recorded.event
    assert recorded.status_change == change


def test_event_that_keeps_the_status_writes_no_status_change(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 0))
    recorded = services.record_event(shipment_id=shipment.pk, event=event("in_transit", 5, description="Hub"))
    assert recorded.created and recorded.status_change is None
    assert StatusChange.objects.filter(shipment=shipment).count() == 1
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 2


def test_duplicate_external_id_is_stored_once(shipment):
    first = services.record_event(shipment_id=shipment.pk, event=event("in_transit", 0, external_id="scan-1"))
    again = services.record_event(shipment_id=shipment.pk, event=event("in_transit", 0, external_id="scan-1"))
    assert first.created and not again.created
    assert again.event.pk == first.event.pk
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 1


def test_same_external_id_from_another_source_is_another_event(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 0, external_id="1"))
    services.record_event(
        shipment_id=shipment.pk, event=event("in_transit", 1, external_id="1", source=EventSource.DRIVER)
    )
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 2


def test_event_without_external_id_dedupes_on_its_content(shipment):
    e = NewEvent(status="in_transit", occurred_at=T0, description="Arrived at hub")
    assert services.record_event(shipment_id=shipment.pk, event=e).created
    assert not services.record_event(shipment_id=shipment.pk, event=e).created
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 1


def test_late_event_is_kept_but_does_not_move_status_back(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 60))
    late = services.record_event(shipment_id=shipment.pk, event=event("in_transit", 10))
    shipment.refresh_from_db()
    assert late.created and late.status_change is None
    assert shipment.status == Status.OUT_FOR_DELIVERY
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 2


def test_late_delivery_scan_delivers(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("exception", 60))
    recorded = services.record_event(shipment_id=shipment.pk, event=event("delivered", 30))
    shipment.refresh_from_db()
    assert shipment.status == Status.DELIVERED
    assert shipment.delivered_at == T0 + timedelta(minutes=30)
    assert recorded.status_change.new_status == Status.DELIVERED


def test_terminal_status_is_left_only_by_a_staff_correction(shipment, django_user_model):
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 10))
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 20))
    shipment.refresh_from_db()
    assert shipment.status == Status.DELIVERED

    staff = django_user_model.objects.create_user("sam", is_staff=True)
    recorded = services.correct_status(
        shipment_id=shipment.pk, status="out_for_delivery", user=staff, reason="Delivered to the wrong house"
    )
    shipment.refresh_from_db()
    assert shipment.status == Status.OUT_FOR_DELIVERY
    assert shipment.delivered_at is None
    change = recorded.status_change
    assert change.changed_by == staff and change.reason == "Delivered to the wrong house"
    assert recorded.event.is_correction and recorded.event.source == EventSource.STAFF


def test_correction_without_author_or_reason_is_rejected(shipment):
    with pytest.raises(EventRejected):
        services.record_event(
            shipment_id=shipment.pk,
            event=NewEvent(status="pending", occurred_at=T0, source=EventSource.STAFF, is_correction=True),
        )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status": "teleported"}, "status"),
        ({"substatus": "abducted"}, "substatus"),
        ({"occurred_at": T0.replace(tzinfo=None)}, "occurred_at"),
        ({"location_lat": 91.0}, "location.lat"),
        ({"location_lng": -181.0}, "location.lng"),
        ({"source": "pigeon"}, "source"),
    ],
)
def test_bad_events_are_rejected_with_the_field(shipment, kwargs, field):
    base = {"status": "in_transit", "occurred_at": T0, "external_id": "x"}
    with pytest.raises(EventRejected) as excinfo:
        services.record_event(shipment_id=shipment.pk, event=NewEvent(**{**base, **kwargs}))
    assert excinfo.value.field == field
    assert not TrackingEvent.objects.exists()


def test_batch_of_one_shipment_writes_the_net_change_once(shipment):
    outcome = services.record_events(
        shipment_id=shipment.pk,
        events=[
            event("info_received", 0),
            event("in_transit", 10),
            event("out_for_delivery", 20),
            event("in_transit", 10),
        ],
    )
    assert [r.created for r in outcome.events] == [True, True, True, False]
    assert outcome.status_change.old_status == "pending"
    assert outcome.status_change.new_status == "out_for_delivery"
    assert StatusChange.objects.filter(shipment=shipment).count() == 1


def test_substatus_follows_the_deciding_event(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 0))
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 5, substatus="weather_delay"))
    shipment.refresh_from_db()
    assert shipment.substatus == "weather_delay"


# An hour after its events, so that no alert (stuck) opens and is announced too.
@time_machine.travel(T0 + timedelta(hours=1), tick=False)
def test_every_new_event_bumps_the_version_and_announces_after_commit(shipment, django_capture_on_commit_callbacks):
    heard = []

    def receiver(sender, changes, **kwargs):
        heard.append(changes)

    signals.shipments_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            first = services.record_event(shipment_id=shipment.pk, event=event("in_transit", 0))
            assert heard == [], "announced before commit"
        with django_capture_on_commit_callbacks(execute=True):
            services.record_event(shipment_id=shipment.pk, event=event("in_transit", 5))
        with django_capture_on_commit_callbacks(execute=True):
            services.record_event(shipment_id=shipment.pk, event=event("in_transit", 5))  # duplicate
    finally:
        signals.shipments_changed.disconnect(receiver)
    token = shipment.public_token
    assert heard == [
        [
            signals.ShipmentChange(
                shipment.pk, shipment.version + 1, first.status_change.pk, token, "pending", "in_transit"
            )
        ],
        # A new event that leaves the status as it was still changes the page.
        [signals.ShipmentChange(shipment.pk, shipment.version + 2, None, token, "in_transit", "in_transit")],
    ]


def test_create_shipment_is_idempotent_on_tracking_number(brand):
    first, created = services.create_shipment(brand=brand, tracking_number="LM1", recipient_name="Ada")
    again, created_again = services.create_shipment(brand=brand, tracking_number="LM1", recipient_name="Bob")
    assert created and not created_again
    assert again.pk == first.pk and again.recipient_name == "Ada"


def test_same_tracking_number_under_two_brands_is_two_shipments(brand, other_brand):
    a, _ = services.create_shipment(brand=brand, tracking_number="LM1")
    b, _ = services.create_shipment(brand=other_brand, tracking_number="LM1")
    assert a.pk != b.pk


def test_public_token_is_long_random_and_unique(make_shipment):
    tokens = {make_shipment().public_token for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(t) >= 43 for t in tokens)


statuses = st.sampled_from([s.value for s in Status])
event_lists = st.lists(
    st.tuples(statuses, st.integers(min_value=0, max_value=40), st.sampled_from(["api", "driver", "carrier"])),
    min_size=1,
    max_size=8,
    unique_by=lambda t: (t[1], t[2]),
)


class TestAnyArrivalOrder(HypothesisTestCase):
    """Any permutation of a shipment's events, with duplicates, ends in the
    same status and the same timeline, and never moves from a terminal status
    back to an open one.

    (Two different terminal events are a real conflict: the earlier one by
    occurred_at wins, so a late-arriving earlier one may replace a terminal
    status with another terminal one; both stay in the timeline.)"""

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(specs=event_lists, data=st.data())
    def test_permutations_with_duplicates(self, specs, data):
        brand = Brand.objects.create(name="B", slug=f"b{Brand.objects.count()}")
        events = [
            event(status, minutes, external_id=f"{source}-{minutes}", source=source)
            for status, minutes, source in specs
        ]
        orders = [events, data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events)))))]
        results = []
        for n, order in enumerate(orders):
            shipment, _ = services.create_shipment(brand=brand, tracking_number=f"P{n}")
            terminal_seen = False
            for e in order:
                services.record_event(shipment_id=shipment.pk, event=e)
                status = Shipment.objects.get(pk=shipment.pk).status
                if terminal_seen:
                    assert status in TERMINAL, "left a terminal status without a correction"
                terminal_seen = terminal_seen or status in TERMINAL
            timeline = list(
                TrackingEvent.objects.filter(shipment=shipment).values_list(
                    "occurred_at", "source", "external_id", "status"
                )
            )
            changes = StatusChange.objects.filter(shipment=shipment).count()
            results.append((Shipment.objects.get(pk=shipment.pk).status, timeline, changes > 0))
        assert results[0][0] == results[1][0]
        assert results[0][1] == results[1][1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_events_make_one_transition(brand):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (set DATABASE_URL)")
    shipment, _ = services.create_shipment(brand=brand, tracking_number="RACE1")
    barrier = threading.Barrier(2)
    results, errors = [], []

    def send(external_id):
        try:
            barrier.wait()
            results.append(
                services.record_event(
                    shipment_id=shipment.pk,
                    event=NewEvent(status="out_for_delivery", occurred_at=T0, source="driver", external_id=external_id),
                )
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    for _round in range(5):
        threads = [threading.Thread(target=send, args=(f"ofd-{_round}-{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert errors == []
    changes = StatusChange.objects.filter(shipment=shipment)
    assert changes.count() == 1
    assert changes.get().new_status == "out_for_delivery"
    assert sum(1 for r in results if r.status_change) == 1
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 10


@pytest.mark.parametrize(
    "occurred_at",
    [T0.replace(year=1999), T0.replace(year=2100), T0.replace(tzinfo=timezone(timedelta(hours=16, minutes=30)))],
)
def test_events_out_of_the_storable_range_are_rejected(shipment, occurred_at):
    with pytest.raises(EventRejected) as excinfo:
        services.record_event(shipment_id=shipment.pk, event=NewEvent(status="in_transit", occurred_at=occurred_at))
    assert excinfo.value.field == "occurred_at"


# --- the batch path: many shipments in one transaction -------------------------------


def state(shipment_id):
    s = Shipment.objects.get(pk=shipment_id)
    timeline = list(
        TrackingEvent.objects.filter(shipment_id=shipment_id).values_list(
            "occurred_at", "source", "external_id", "status"
        )
    )
    return (s.status, s.substatus, s.delivered_at, s.last_event_at, timeline)


def test_brand_batch_answers_each_item_and_writes_the_valid_ones(brand, other_brand, make_shipment):
    mine = make_shipment(tracking_number="A1")
    make_shipment(tracking_number="B1", for_brand=other_brand)
    outcomes = services.record_brand_events(
        brand=brand,
        items=[
            ("A1", event("in_transit", 0)),
            ("B1", event("in_transit", 0)),
            ("A1", event("teleported", 1)),
            ("A1", event("in_transit", 0)),
            ("A1", event("out_for_delivery", 5)),
        ],
    )
    assert [o.result for o in outcomes] == ["accepted", "error", "error", "duplicate", "accepted"]
    assert isinstance(outcomes[1].error, services.UnknownShipment)
    assert outcomes[2].error.field == "status"
    mine.refresh_from_db()
    assert mine.status == "out_for_delivery"
    assert StatusChange.objects.filter(shipment=mine).count() == 1
    assert not TrackingEvent.objects.filter(shipment__brand=other_brand).exists()


def test_record_event_for_no_such_shipment_raises_does_not_exist(make_shipment):
    shipment = make_shipment()
    with pytest.raises(Shipment.DoesNotExist):
        services.record_event(shipment_id=shipment.pk + 1000, event=event("in_transit"))
    recorded = services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    # The shipment it hands back is whole, not a row of deferred fields.
    assert recorded.event.shipment.get_deferred_fields() == set()
    assert recorded.event.shipment.recipient_name == shipment.recipient_name


def test_brand_batch_queries_do_not_grow_with_the_batch(brand, make_shipment, django_assert_max_num_queries):
    numbers = [make_shipment().tracking_number for _ in range(30)]
    items = [(n, event("in_transit", i, external_id=f"e{i}")) for i, n in enumerate(numbers)]
    # Lock, dedupe, insert events, insert status changes, update shipments,
    # plus the savepoint around them.
    with django_assert_max_num_queries(7):
        services.record_brand_events(brand=brand, items=items)
    assert StatusChange.objects.count() == 30
    # Sent again, the whole batch is found as duplicates, in as few queries.
    with django_assert_max_num_queries(5):
        again = services.record_brand_events(brand=brand, items=items)
    assert {o.result for o in again} == {"duplicate"}
    assert TrackingEvent.objects.count() == 30
    shipment = Shipment.objects.get(tracking_number=numbers[0])
    change = StatusChange.objects.get(shipment=shipment)
    assert (change.event.external_id, change.created_at is not None) == ("e0", True)
    assert shipment.status_changed_at is not None and shipment.version == 2


def test_brand_batch_replays_the_timeline_for_a_late_event(brand, make_shipment):
    shipment = make_shipment(tracking_number="A1")
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 60))
    services.record_brand_events(brand=brand, items=[("A1", event("in_transit", 10)), ("A1", event("delivered", 30))])
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    assert shipment.delivered_at == T0 + timedelta(minutes=30)


batch_specs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2),
        statuses,
        st.integers(min_value=0, max_value=30),
        st.sampled_from(["api", "driver", "carrier"]),
        st.sampled_from(["", "delayed", "weather_delay"]),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda t: (t[0], t[2], t[3]),
)


class TestBatchAndSinglePathsAgree(HypothesisTestCase):
    """Events for several shipments sent as one brand batch end exactly as
    the same events sent one by one, in any order, with resends."""

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(specs=batch_specs, data=st.data())
    def test_batch_equals_one_by_one(self, specs, data):
        brand = Brand.objects.create(name="B", slug=f"batch{Brand.objects.count()}")
        items = [
            (n, event(status, minutes, external_id=f"{source}-{minutes}", source=source, substatus=substatus))
            for n, status, minutes, source, substatus in specs
        ]
        single = [services.create_shipment(brand=brand, tracking_number=f"S{n}")[0] for n in range(3)]
        batched = [services.create_shipment(brand=brand, tracking_number=f"B{n}")[0] for n in range(3)]

        for n, e in data.draw(st.permutations(items)):
            services.record_event(shipment_id=single[n].pk, event=e)
        resent = data.draw(st.lists(st.sampled_from(items), max_size=4))
        batch = data.draw(st.permutations(items + resent))
        outcomes = services.record_brand_events(brand=brand, items=[(f"B{n}", e) for n, e in batch])

        assert sum(o.result == "accepted" for o in outcomes) == len(items)
        for n in range(3):
            assert state(single[n].pk) == state(batched[n].pk)
            changes = StatusChange.objects.filter(shipment=batched[n])
            assert changes.count() <= 1
            if changes:
                assert changes.get().new_status == Shipment.objects.get(pk=batched[n].pk).status


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_over_the_same_shipments_neither_deadlock_nor_double_transition(brand):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (set DATABASE_URL)")
    numbers = [services.create_shipment(brand=brand, tracking_number=f"C{n}")[0].tracking_number for n in range(20)]
    barrier = threading.Barrier(2)
    errors = []

    def send(order, prefix):
        try:
            barrier.wait()
            services.record_brand_events(
                brand=brand, items=[(n, event("out_for_delivery", 0, external_id=f"{prefix}-{n}")) for n in order]
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=(numbers, "fwd")),
        threading.Thread(target=send, args=(list(reversed(numbers)), "rev")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert StatusChange.objects.count() == 20
    assert TrackingEvent.objects.count() == 40


def test_delivered_at_is_the_earliest_delivery_whatever_the_arrival_order(make_shipment):
    first, second = make_shipment(), make_shipment()
    for shipment, order in [(first, [10, 5]), (second, [5, 10])]:
        for minutes in order:
            services.record_event(shipment_id=shipment.pk, event=event("delivered", minutes))
        shipment.refresh_from_db()
        assert shipment.delivered_at == T0 + timedelta(minutes=5)
