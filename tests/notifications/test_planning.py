"""Planning (notifications/planning.py): a status change becomes its notifications, once."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import planning, sending, sweep
from notifications.models import (
    BrandNotificationSettings,
    Channel,
    MessageTemplate,
    Notification,
    SmsOptOut,
    State,
    Subscription,
)
from notifications.sending import SendOutcome
from shipments import services as shipment_services
from shipments.models import Brand, StatusChange

from ..conftest import event

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def change_to(shipment, status, minutes=1):
    recorded = shipment_services.record_event(shipment_id=shipment.pk, event=event(status, minutes))
    assert recorded.status_change is not None
    return recorded.status_change


def test_planning_makes_one_notification_per_channel_and_recipient(shipment, brand):
    brand.webhook_url, brand.webhook_secret = "https://hooks.acme.example/parcels", WEBHOOK_SECRET
    brand.save()
    change = change_to(shipment, "out_for_delivery")

    due = planning.plan_notifications(status_change_id=change.pk)

    rows = {(n.channel, n.recipient): n for n in Notification.objects.all()}
    assert set(rows) == {
        ("sms", "+447700900123"),
        ("email", "ada@example.com"),
        ("webhook", "https://hooks.acme.example/parcels"),
    }
    assert sorted(due) == sorted(n.pk for n in rows.values())
    assert "LM000001" in rows[("sms", "+447700900123")].body
    assert shipment.tracking_url in rows[("sms", "+447700900123")].body
    assert rows[("sms", "+447700900123")].segments == 1
    change.refresh_from_db()
    assert change.processed_at is not None


def test_planning_twice_plans_once(shipment):
    change = change_to(shipment, "delivered")
    first = planning.plan_notifications(status_change_id=change.pk)
    StatusChange.objects.filter(pk=change.pk).update(processed_at=None)  # as if the stamp were lost
    second = planning.plan_notifications(status_change_id=change.pk)
    assert Notification.objects.count() == 2
    assert sorted(first) == sorted(second)


def test_statuses_the_brand_does_not_notify_plan_nothing_for_customers(shipment):
    change = change_to(shipment, "in_transit")
    assert planning.plan_notifications(status_change_id=change.pk) == []
    assert not Notification.objects.exists()
    assert StatusChange.objects.get(pk=change.pk).processed_at is not None


def test_brand_settings_choose_statuses_per_channel(shipment, brand):
    BrandNotificationSettings.objects.create(brand=brand, sms_statuses=["in_transit"], email_statuses=[])
    planning.plan_notifications(status_change_id=change_to(shipment, "in_transit").pk)
    assert list(Notification.objects.values_list("channel", flat=True)) == ["sms"]


def test_recipient_can_be_left_to_opt_in_only(shipment, brand):
    BrandNotificationSettings.objects.create(brand=brand, notify_recipient=False)
    Subscription.objects.create(shipment=shipment, channel="email", address="fan@example.com", source="tracking_page")
    planning.plan_notifications(status_change_id=change_to(shipment, "delivered").pk)
    assert list(Notification.objects.values_list("recipient", flat=True)) == ["fan@example.com"]


def test_the_brands_template_overrides_the_default_in_the_recipients_language(make_shipment, brand):
    shipment = make_shipment(recipient_language="es")
    MessageTemplate.objects.create(
        brand=brand, status="delivered", language="es", sms_text="¡$first_name, entregado! $tracking_number"
    )
    planning.plan_notifications(status_change_id=change_to(shipment, "delivered").pk)
    sms = Notification.objects.get(channel="sms")
    email = Notification.objects.get(channel="email")
    assert sms.body == f"¡Ada, entregado! {shipment.tracking_number}"
    assert email.subject == "Tu paquete ha sido entregado"  # the default, as the template left it empty


def test_templates_cannot_reach_into_objects(shipment, brand):
    MessageTemplate.objects.create(
        brand=brand, status="delivered", language="en", sms_text="{shipment.brand.webhook_secret} $brand.__class__"
    )
    planning.plan_notifications(status_change_id=change_to(shipment, "delivered").pk)
    assert Notification.objects.get(channel="sms").body == "{shipment.brand.webhook_secret} Acme Parcels.__class__"


def test_stale_status_changes_send_no_sms_or_email(shipment):
    change = change_to(shipment, "delivered")
    StatusChange.objects.filter(pk=change.pk).update(created_at=timezone.now() - timedelta(days=3))
    assert planning.plan_notifications(status_change_id=change.pk) == []


@pytest.mark.parametrize(
    ("now_utc", "tz", "status", "expected_utc"),
    [
        # 22:30 in London (GMT) → 08:00 next morning
        (datetime(2026, 11, 26, 22, 30, tzinfo=UTC), "Europe/London", "failed_attempt", datetime(2026, 11, 27, 8, 0)),
        # Out for delivery and delivered go out at night
        (datetime(2026, 11, 26, 22, 30, tzinfo=UTC), "Europe/London", "out_for_delivery", None),
        (datetime(2026, 11, 26, 22, 30, tzinfo=UTC), "Europe/London", "delivered", None),
        # 22:30 UTC is 17:30 in New York: not quiet
        (datetime(2026, 11, 26, 22, 30, tzinfo=UTC), "America/New_York", "exception", None),
        # 03:00 UTC is 22:00 in New York (EST) → 08:00 EST = 13:00 UTC
        (datetime(2026, 11, 27, 3, 0, tzinfo=UTC), "America/New_York", "exception", datetime(2026, 11, 27, 13, 0)),
        # 06:00 in Tokyo is 21:00 UTC the day before → 08:00 JST = 23:00 UTC
        (datetime(2026, 11, 26, 21, 0, tzinfo=UTC), "Asia/Tokyo", "exception", datetime(2026, 11, 26, 23, 0)),
        # London, spring forward (29 March 2026): 22:00 GMT → 08:00 BST = 07:00 UTC
        (datetime(2026, 3, 28, 22, 0, tzinfo=UTC), "Europe/London", "exception", datetime(2026, 3, 29, 7, 0)),
        # London, fall back (25 October 2026): 21:30 BST = 20:30 UTC → 08:00 GMT = 08:00 UTC
        (datetime(2026, 10, 24, 20, 30, tzinfo=UTC), "Europe/London", "exception", datetime(2026, 10, 25, 8, 0)),
        # New York, spring forward (8 March 2026) inside the night: 01:30 EST → 08:00 EDT = 12:00 UTC
        (datetime(2026, 3, 8, 6, 30, tzinfo=UTC), "America/New_York", "exception", datetime(2026, 3, 8, 12, 0)),
        # 07:59 local is quiet; 08:00 is not
        (datetime(2026, 11, 27, 7, 59, tzinfo=UTC), "Europe/London", "exception", datetime(2026, 11, 27, 8, 0)),
        (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), "Europe/London", "exception", None),
        (datetime(2026, 11, 27, 20, 59, tzinfo=UTC), "Europe/London", "exception", None),
    ],
)
def test_quiet_hours_hold_sms_until_eight_local(make_shipment, now_utc, tz, status, expected_utc):
    shipment = make_shipment(recipient_timezone=tz)
    with time_machine.travel(now_utc, tick=False):
        planning.plan_notifications(status_change_id=change_to(shipment, status).pk)
        sms = Notification.objects.get(channel="sms")
        email = Notification.objects.filter(channel="email").first()
    expected = expected_utc.replace(tzinfo=UTC) if expected_utc else now_utc
    assert sms.next_attempt_at == expected
    if email is not None:
        assert email.next_attempt_at == now_utc  # email has no quiet hours


def test_the_brands_time_zone_is_used_when_the_recipient_has_none(make_shipment, brand):
    brand.default_timezone = "Europe/Berlin"
    brand.save()
    shipment = make_shipment(recipient_timezone="")
    with time_machine.travel(datetime(2026, 11, 26, 20, 30, tzinfo=UTC), tick=False):  # 21:30 in Berlin
        planning.plan_notifications(status_change_id=change_to(shipment, "exception").pk)
    assert Notification.objects.get(channel="sms").next_attempt_at == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def test_channel_choices_cover_customer_and_brand(db):
    assert {c.value for c in Channel} == {"sms", "email", "webhook"}


def test_the_planner_claims_every_due_notification_in_the_planning_transaction(make_shipment, brand):
    brand.webhook_url, brand.webhook_secret = "https://hooks.acme.example/parcels", WEBHOOK_SECRET
    brand.save()
    changes = [change_to(make_shipment(), "delivered").pk for _ in range(2)]
    plan = planning.plan_batch(changes)
    assert plan.due == []
    assert sorted((n.status_change_id, n.channel) for n in plan.claimed) == sorted(
        (change, channel) for change in changes for channel in ("sms", "email", "webhook")
    )
    rows = Notification.objects.filter(pk__in=[n.pk for n in plan.claimed])
    assert {(n.state, n.claim_id, n.attempts) for n in rows} == {(State.SENDING, plan.claim_id, 1)}
    assert all(n.lease_until > timezone.now() for n in rows)
    assert None not in set(StatusChange.objects.filter(pk__in=changes).values_list("processed_at", flat=True))
    # Nobody else can take them while the lease holds.
    assert sending.send_notification(notification_id=plan.claimed[0].pk).outcome == SendOutcome.NOT_CLAIMED


def test_an_sms_held_for_quiet_hours_is_planned_but_not_claimed(make_shipment):
    shipment = make_shipment(recipient_timezone="Europe/London")
    with time_machine.travel(datetime(2026, 1, 15, 22, 0, tzinfo=UTC), tick=False):
        plan = planning.plan_batch([change_to(shipment, "failed_attempt").pk])
    assert [n.channel for n in plan.claimed] == ["email"]
    assert Notification.objects.get(channel="sms").state == State.QUEUED


def test_a_planner_that_dies_before_sending_leaves_leases_the_sweep_recovers(shipment, memory_sms):
    plan = planning.plan_batch([change_to(shipment, "delivered").pk])
    sms = next(n for n in plan.claimed if n.channel == "sms")
    # ... the worker dies here; later its leases have run out:
    Notification.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert sms.pk in sweep.sweep().due_notification_ids
    assert sending.send_notification(notification_id=sms.pk).outcome == SendOutcome.SENT
    assert Notification.objects.get(pk=sms.pk).attempts == 2
    assert len(memory_sms) == 1


def test_planning_again_after_a_reset_stamp_claims_nothing_and_duplicates_nothing(shipment):
    change = change_to(shipment, "delivered")
    planning.plan_notifications(status_change_id=change.pk)
    StatusChange.objects.filter(pk=change.pk).update(processed_at=None)
    plan = planning.plan_batch([change.pk])
    assert plan.claimed == []
    assert sorted(plan.due) == sorted(Notification.objects.values_list("pk", flat=True))
    assert Notification.objects.count() == 2
    assert set(Notification.objects.values_list("state", flat=True)) == {State.QUEUED}


def test_planning_again_after_a_reset_stamp_claims_only_what_was_missing(shipment):
    change = change_to(shipment, "delivered")
    planning.plan_batch([change.pk], claim=False)
    # The stamp reset by hand, and one of the two rows gone meanwhile.
    StatusChange.objects.filter(pk=change.pk).update(processed_at=None)
    Notification.objects.filter(channel="email").delete()
    plan = planning.plan_batch([change.pk])
    assert [n.channel for n in plan.claimed] == ["email"]
    stored = {n.channel: n for n in Notification.objects.all()}
    assert (stored["email"].state, stored["email"].claim_id) == (State.SENDING, plan.claim_id)
    # The SMS planned before is queued and due: handed back to be sent, not claimed twice.
    assert plan.due == [stored["sms"].pk] and stored["sms"].state == State.QUEUED


def test_a_redelivered_plan_claims_nothing_and_leaves_what_is_queued_to_its_task_or_the_sweep(shipment):
    change = change_to(shipment, "delivered")
    planning.plan_batch([change.pk])
    # The email failed once and waits for its retry.
    Notification.objects.filter(channel="email").update(state=State.QUEUED, claim_id=None, lease_until=None)
    assert planning.plan_batch([change.pk]) == planning.Plan(due=[])
    assert Notification.objects.filter(state=State.SENDING).count() == 1


def test_a_planner_that_is_behind_fills_its_batch_from_the_outbox(make_shipment, memory_sms):
    changes = [change_to(make_shipment(), "delivered").pk for _ in range(4)]
    # On time, a planner plans what it was given.
    assert {n.status_change_id for n in planning.plan_batch(changes[:1], up_to=3).claimed} == {changes[0]}
    StatusChange.objects.update(created_at=timezone.now() - timedelta(seconds=1))
    # Behind, it takes the oldest waiting changes too, up to its batch size.
    plan = planning.plan_batch(changes[3:], up_to=3)
    assert {n.status_change_id for n in plan.claimed} == {changes[1], changes[2], changes[3]}
    # The tasks queued for those find their work done and send nothing twice.
    assert planning.plan_batch(changes[1:2], up_to=3) == planning.Plan(due=[])


def test_a_change_whose_planning_fails_stays_in_the_outbox_and_the_others_go_ahead(make_shipment, monkeypatch):
    good, bad = (change_to(make_shipment(), "delivered") for _ in range(2))
    real_rows_for = planning._rows_for

    def failing_for_one(change, now, subscribers):
        if change.pk == bad.pk:
            raise ValueError("a template the renderer chokes on")
        return real_rows_for(change, now, subscribers)

    monkeypatch.setattr(planning, "_rows_for", failing_for_one)
    plan = planning.plan_batch([good.pk, bad.pk])
    assert {n.status_change_id for n in plan.claimed} == {good.pk}
    assert StatusChange.objects.get(pk=bad.pk).processed_at is None
    assert StatusChange.objects.get(pk=good.pk).processed_at is not None


def test_a_brand_without_settings_is_not_asked_for_them_once_per_change(make_shipment, brand):
    BrandNotificationSettings.objects.filter(brand=brand).delete()
    changes = [change_to(make_shipment(), "delivered").pk for _ in range(3)]
    with CaptureQueriesContext(connection) as queries:
        plan = planning.plan_batch(changes)
    table = BrandNotificationSettings._meta.db_table
    # Read with the status changes (one statement on PostgreSQL, one join
    # elsewhere), never on its own.
    assert not [q["sql"] for q in queries if q["sql"].lstrip().startswith("SELECT") and f'FROM "{table}"' in q["sql"]]
    assert {n.channel for n in plan.claimed} == {"sms", "email"}


def test_a_batch_asks_for_its_subscribers_in_a_few_queries_whatever_its_size(make_shipment, brand):
    """Who hears of each change (the recipient's own row, opt-ins, STOPs)
    is read for the batch at once, not per message."""

    def subscriber_queries(count):
        changes = [change_to(make_shipment(), "out_for_delivery").pk for _ in range(count)]
        with CaptureQueriesContext(connection) as queries:
            plan = planning.plan_batch(changes)
        assert {n.channel for n in plan.claimed} == {"sms", "email"}
        assert len(plan.claimed) == 2 * count
        tables = (Subscription._meta.db_table, SmsOptOut._meta.db_table)
        return len([q for q in queries if any(f'"{table}"' in q["sql"] for table in tables)])

    assert subscriber_queries(1) == subscriber_queries(6) <= 3


def test_a_batch_of_nothing_has_nobody_to_tell(shipment):
    assert planning.Subscribers([]).of(shipment, "sms", True) == []


def test_a_batch_keeps_each_shipments_own_subscribers(make_shipment, brand):
    stopped, unsubscribed, listening = (
        make_shipment(recipient_phone=f"+44770090011{n}", recipient_email=f"r{n}@example.com") for n in range(3)
    )
    SmsOptOut.objects.create(phone=stopped.recipient_phone)
    Subscription.objects.create(
        shipment=unsubscribed, channel="email", address=unsubscribed.recipient_email.lower(),
        source=Subscription.Source.RECIPIENT, active=False,
    )  # fmt: skip
    Subscription.objects.create(shipment=listening, channel="sms", address="+447700900999", source="tracking_page")
    changes = [change_to(s, "out_for_delivery").pk for s in (stopped, unsubscribed, listening)]
    plan = planning.plan_batch(changes)
    heard = {(n.shipment_id, n.channel, n.recipient) for n in plan.claimed}
    assert (stopped.pk, "sms", stopped.recipient_phone) not in heard
    assert (stopped.pk, "email", stopped.recipient_email.lower()) in heard
    assert (unsubscribed.pk, "email", unsubscribed.recipient_email.lower()) not in heard
    assert (unsubscribed.pk, "sms", unsubscribed.recipient_phone) in heard
    assert {(listening.pk, "sms", listening.recipient_phone), (listening.pk, "sms", "+447700900999")} <= heard
    # The recipients' own rows were made once, the unsubscribed one left as it was.
    assert not Subscription.objects.get(shipment=unsubscribed, channel="email").active
    assert Subscription.objects.filter(shipment=listening, channel="sms").count() == 2


def _loaded(change):
    """What planning reads of a change: its own row, its event, shipment,
    brand and the brand's settings (None when the brand has none), all
    already in memory."""
    brand = change.shipment.brand
    settings_cache = Brand.notification_settings.related
    brand_settings = settings_cache.get_cached_value(brand) if settings_cache.is_cached(brand) else "not read"
    return [
        model_to_row(obj) if obj is not None and obj != "not read" else obj
        for obj in (change, change.event, change.shipment, brand, brand_settings)
    ]


def model_to_row(obj):
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


STATUSES = ["delivered", "delivered", "out_for_delivery", "exception"]


@pytest.mark.postgres
@pytest.mark.parametrize("others", [0, 2])
def test_the_written_out_planning_statement_reads_what_the_orm_reads(make_shipment, other_brand, others):
    if connection.vendor != "postgresql":
        pytest.skip("the written-out statement is PostgreSQL's (set DATABASE_URL)")
    BrandNotificationSettings.objects.filter(brand=other_brand).delete()
    changes = [
        change_to(make_shipment(), "delivered").pk,
        change_to(make_shipment(for_brand=other_brand), "delivered").pk,
    ]
    changes += [change_to(make_shipment(), "out_for_delivery").pk, change_to(make_shipment(), "exception").pk]
    StatusChange.objects.filter(pk=changes[3]).update(processed_at=timezone.now())  # planned already
    wanted = changes[:1] if others else changes
    by_sql = planning._lock_unplanned_sql(wanted, others)
    by_orm = planning._lock_unplanned_orm(wanted, others)
    expected = changes[1:3] if others else changes[:3]
    assert [change.pk for change in by_sql] == [change.pk for change in by_orm] == expected
    with CaptureQueriesContext(connection) as queries:
        assert [_loaded(change) for change in by_sql] == [_loaded(change) for change in by_orm]
    assert queries.captured_queries == []
