import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import preferences, services, tasks
from notifications.models import (
    BrandNotificationSettings,
    Channel,
    MessageTemplate,
    Notification,
    SmsOptOut,
    State,
    Subscription,
    WebhookAttempt,
)
from notifications.services import Outcome
from notifications.transports import Sent
from shipments import services as shipment_services
from shipments.models import Driver, LocationPing, StatusChange

from ..conftest import event
from .test_transports import FakeEndpoint

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def change_to(shipment, status, minutes=1):
    recorded = shipment_services.record_event(shipment_id=shipment.pk, event=event(status, minutes))
    assert recorded.status_change is not None
    return recorded.status_change


def test_planning_makes_one_notification_per_channel_and_recipient(shipment, brand):
    brand.webhook_url, brand.webhook_secret = "https://hooks.acme.example/parcels", WEBHOOK_SECRET
    brand.save()
    change = change_to(shipment, "out_for_delivery")

    due = services.plan_notifications(status_change_id=change.pk)

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
    first = services.plan_notifications(status_change_id=change.pk)
    StatusChange.objects.filter(pk=change.pk).update(processed_at=None)  # as if the stamp were lost
    second = services.plan_notifications(status_change_id=change.pk)
    assert Notification.objects.count() == 2
    assert sorted(first) == sorted(second)


def test_statuses_the_brand_does_not_notify_plan_nothing_for_customers(shipment):
    change = change_to(shipment, "in_transit")
    assert services.plan_notifications(status_change_id=change.pk) == []
    assert not Notification.objects.exists()
    assert StatusChange.objects.get(pk=change.pk).processed_at is not None


def test_brand_settings_choose_statuses_per_channel(shipment, brand):
    BrandNotificationSettings.objects.create(brand=brand, sms_statuses=["in_transit"], email_statuses=[])
    services.plan_notifications(status_change_id=change_to(shipment, "in_transit").pk)
    assert list(Notification.objects.values_list("channel", flat=True)) == ["sms"]


def test_recipient_can_be_left_to_opt_in_only(shipment, brand):
    BrandNotificationSettings.objects.create(brand=brand, notify_recipient=False)
    Subscription.objects.create(shipment=shipment, channel="email", address="fan@example.com", source="tracking_page")
    services.plan_notifications(status_change_id=change_to(shipment, "delivered").pk)
    assert list(Notification.objects.values_list("recipient", flat=True)) == ["fan@example.com"]


def test_the_brands_template_overrides_the_default_in_the_recipients_language(make_shipment, brand):
    shipment = make_shipment(recipient_language="es")
    MessageTemplate.objects.create(
        brand=brand, status="delivered", language="es", sms_text="¡$first_name, entregado! $tracking_number"
    )
    services.plan_notifications(status_change_id=change_to(shipment, "delivered").pk)
    sms = Notification.objects.get(channel="sms")
    email = Notification.objects.get(channel="email")
    assert sms.body == f"¡Ada, entregado! {shipment.tracking_number}"
    assert email.subject == "Tu paquete ha sido entregado"  # the default, as the template left it empty


def test_templates_cannot_reach_into_objects(shipment, brand):
    MessageTemplate.objects.create(
        brand=brand, status="delivered", language="en", sms_text="{shipment.brand.webhook_secret} $brand.__class__"
    )
    services.plan_notifications(status_change_id=change_to(shipment, "delivered").pk)
    assert Notification.objects.get(channel="sms").body == "{shipment.brand.webhook_secret} Acme Parcels.__class__"


def test_stale_status_changes_send_no_sms_or_email(shipment):
    change = change_to(shipment, "delivered")
    StatusChange.objects.filter(pk=change.pk).update(created_at=timezone.now() - timedelta(days=3))
    assert services.plan_notifications(status_change_id=change.pk) == []


# --- sending ---------------------------------------------------------------


def planned(shipment, status="delivered", channel="sms"):
    services.plan_notifications(status_change_id=change_to(shipment, status).pk)
    return Notification.objects.get(shipment=shipment, channel=channel)


def test_send_claims_sends_and_records_the_provider_id(shipment, memory_sms):
    notification = planned(shipment)
    assert services.send_notification(notification_id=notification.pk).outcome == Outcome.SENT
    notification.refresh_from_db()
    assert notification.state == State.SENT
    assert notification.provider_message_id.startswith("memory-")
    assert notification.attempts == 1
    assert notification.sent_at is not None
    assert (notification.lease_until, notification.claim_id) == (None, None)
    assert [m.to for m in memory_sms] == ["+447700900123"]


def test_a_task_delivered_twice_sends_once(shipment, memory_sms):
    notification = planned(shipment)
    first = tasks.send_notification_task.apply(args=[notification.pk]).get()
    second = tasks.send_notification_task.apply(args=[notification.pk]).get()
    assert (first, second) == ("sent", "not_claimed")
    assert len(memory_sms) == 1


def test_a_row_another_worker_holds_is_not_sent(shipment, memory_sms):
    notification = planned(shipment)
    Notification.objects.filter(pk=notification.pk).update(
        state=State.SENDING, lease_until=timezone.now() + timedelta(seconds=60)
    )
    assert services.send_notification(notification_id=notification.pk).outcome == Outcome.NOT_CLAIMED
    assert memory_sms == []


def test_an_expired_lease_is_taken_over(shipment, memory_sms):
    notification = planned(shipment)
    Notification.objects.filter(pk=notification.pk).update(
        state=State.SENDING, lease_until=timezone.now() - timedelta(seconds=1), attempts=1
    )
    assert services.send_notification(notification_id=notification.pk).outcome == Outcome.SENT
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (State.SENT, 2)
    assert len(memory_sms) == 1


def test_a_late_writer_whose_lease_was_taken_over_does_not_overwrite(shipment, memory_sms, settings):
    """The fence: recording the result is conditional on still holding the
    claim, so a worker that outlived its lease cannot mark someone else's
    attempt."""
    from notifications.transports import Sent

    notification = planned(shipment)

    class TakenOverWhileSending:
        def send(self, message):
            Notification.objects.filter(pk=message.notification_id).update(claim_id=None, state=State.QUEUED)
            return Sent("late-id")

    settings.SMS_BACKEND = f"{__name__}.TakenOver"
    globals()["TakenOver"] = TakenOverWhileSending
    services.send_notification(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.state == State.QUEUED
    assert notification.provider_message_id == ""


class FailingSms:
    error = None
    calls = 0

    def send(self, message):
        type(self).calls += 1
        raise self.error


@pytest.fixture
def failing_sms(settings):
    settings.SMS_BACKEND = f"{__name__}.FailingSms"
    FailingSms.calls = 0
    return FailingSms


def test_transient_failures_back_off_with_jitter_then_fail(shipment, failing_sms):
    from notifications.transports import TransportError

    failing_sms.error = TransportError("HTTP 503")
    notification = planned(shipment)
    delays = []
    for attempt in range(1, 7):
        result = services.send_notification(notification_id=notification.pk)
        notification.refresh_from_db()
        assert notification.attempts == attempt
        if attempt < 6:
            assert (result.outcome, notification.state) == (Outcome.RETRY, State.QUEUED)
            wait = (notification.next_attempt_at - timezone.now()).total_seconds()
            delays.append(wait)
            assert 0 < wait <= 30 * 2 ** (attempt - 1) + 1
            Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
        else:
            assert (result.outcome, notification.state) == (Outcome.FAILED, State.FAILED)
    assert delays == sorted(delays) or delays[-1] > delays[0]  # grows overall despite jitter
    assert notification.last_error == "HTTP 503"
    assert failing_sms.calls == 6


def test_a_permanent_failure_is_not_retried(shipment, failing_sms):
    from notifications.transports import TransportError

    failing_sms.error = TransportError("Invalid number", permanent=True)
    notification = planned(shipment)
    assert services.send_notification(notification_id=notification.pk).outcome == Outcome.FAILED
    assert services.send_notification(notification_id=notification.pk).outcome == Outcome.NOT_CLAIMED
    assert failing_sms.calls == 1


def test_retry_requeues_failed_ones_only(shipment, failing_sms, memory_sms, settings):
    from notifications.transports import TransportError

    failing_sms.error = TransportError("Invalid number", permanent=True)
    notification = planned(shipment)
    services.send_notification(notification_id=notification.pk)
    email = Notification.objects.get(channel="email")
    assert services.retry_failed(notification_ids=[notification.pk, email.pk]) == [notification.pk]
    settings.SMS_BACKEND = "memory"
    assert services.send_notification(notification_id=notification.pk).outcome == Outcome.SENT
    assert len(memory_sms) == 1


def test_a_notification_that_is_not_due_yet_is_not_sent(shipment, memory_sms):
    notification = planned(shipment)
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert services.send_notification(notification_id=notification.pk).outcome == Outcome.NOT_CLAIMED
    assert memory_sms == []


# --- wiring: record_event → signal → tasks, in-process ----------------------


def test_recording_an_event_sends_after_commit(
    shipment, memory_sms, outbox, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        shipment_services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 1))
    assert [m.to for m in memory_sms] == ["+447700900123"]
    assert [m.to for m in outbox] == [["ada@example.com"]]
    assert set(Notification.objects.values_list("state", flat=True)) == {State.SENT}


def test_an_event_that_changes_nothing_sends_nothing(
    shipment, memory_sms, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        shipment_services.record_event(shipment_id=shipment.pk, event=event("delivered", 1))
    with django_capture_on_commit_callbacks(execute=True):
        shipment_services.record_event(shipment_id=shipment.pk, event=event("delivered", 1))  # redelivered
        shipment_services.record_event(shipment_id=shipment.pk, event=event("in_transit", 2))  # after terminal
    assert len(memory_sms) == 1


def test_a_broken_broker_never_reaches_the_caller(
    shipment, memory_sms, django_capture_on_commit_callbacks, settings, monkeypatch
):
    """Redis down at commit: the caller that recorded the event is not told,
    and the change stays unprocessed for the sweep."""
    import kombu.exceptions

    def unreachable(*args, **kwargs):
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")

    # The edge of the world here is the broker connection.
    monkeypatch.setattr(tasks.plan_notifications_task, "apply_async", unreachable)
    with django_capture_on_commit_callbacks(execute=True):
        recorded = shipment_services.record_event(shipment_id=shipment.pk, event=event("delivered", 1))
    change = StatusChange.objects.get(pk=recorded.status_change.pk)
    assert change.processed_at is None
    assert not Notification.objects.exists()


# --- preferences -----------------------------------------------------------


def test_stop_is_honoured_at_planning_and_at_sending(shipment, make_shipment, memory_sms):
    queued = planned(shipment, "out_for_delivery")
    preferences.handle_sms_reply(phone="+447700900123", text="Stop")
    assert services.send_notification(notification_id=queued.pk).outcome == Outcome.NOT_CLAIMED
    assert Notification.objects.get(pk=queued.pk).state == State.SKIPPED

    other = make_shipment()
    services.plan_notifications(status_change_id=change_to(other, "delivered").pk)
    assert not Notification.objects.filter(shipment=other, channel="sms").exists()
    assert Notification.objects.filter(shipment=other, channel="email").exists()
    assert memory_sms == []

    preferences.handle_sms_reply(phone="+447700900123", text="START")
    third = make_shipment()
    services.plan_notifications(status_change_id=change_to(third, "delivered").pk)
    assert Notification.objects.filter(shipment=third, channel="sms").exists()


def test_other_replies_change_nothing(db):
    assert preferences.handle_sms_reply(phone="+447700900123", text="When will it arrive? Please stop by") is None
    assert not SmsOptOut.objects.exists()


def test_unsubscribed_between_planning_and_sending_is_skipped(shipment, outbox):
    notification = planned(shipment, channel="email")
    preferences.unsubscribe(subscription_id=notification.subscription_id)
    assert services.send_notification(notification_id=notification.pk).outcome == Outcome.NOT_CLAIMED
    assert Notification.objects.get(pk=notification.pk).state == State.SKIPPED
    assert outbox == []


def test_a_claimed_row_whose_recipient_has_gone_is_skipped_not_sent(shipment, memory_sms):
    notification = planned(shipment)
    SmsOptOut.objects.create(phone="+447700900123")
    assert services.send_notification(notification_id=notification.pk).outcome == Outcome.SKIPPED
    assert memory_sms == []


# --- quiet hours -----------------------------------------------------------


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
        services.plan_notifications(status_change_id=change_to(shipment, status).pk)
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
        services.plan_notifications(status_change_id=change_to(shipment, "exception").pk)
    assert Notification.objects.get(channel="sms").next_attempt_at == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def test_a_held_sms_goes_out_through_the_sweep_in_the_morning(make_shipment, memory_sms):
    shipment = make_shipment(recipient_timezone="Europe/London")
    with time_machine.travel(datetime(2026, 11, 26, 23, 0, tzinfo=UTC), tick=False):
        due = services.plan_notifications(status_change_id=change_to(shipment, "failed_attempt").pk)
        sms = Notification.objects.get(channel="sms")
        assert sms.pk not in due
        assert sms.pk not in services.sweep().due_notification_ids
        assert services.send_notification(notification_id=sms.pk).outcome == Outcome.NOT_CLAIMED
    with time_machine.travel(datetime(2026, 11, 27, 8, 1, 30, tzinfo=UTC), tick=False):
        assert sms.pk in services.sweep().due_notification_ids
        assert services.send_notification(notification_id=sms.pk).outcome == Outcome.SENT
    assert len(memory_sms) == 1


def test_a_retry_that_drifts_into_the_night_waits_for_the_morning(make_shipment, memory_sms):
    shipment = make_shipment(recipient_timezone="Europe/London")
    with time_machine.travel(datetime(2026, 11, 26, 20, 0, tzinfo=UTC), tick=False):
        services.plan_notifications(status_change_id=change_to(shipment, "failed_attempt").pk)
        sms = Notification.objects.get(channel="sms")
    with time_machine.travel(datetime(2026, 11, 26, 21, 30, tzinfo=UTC), tick=False):
        result = services.send_notification(notification_id=sms.pk)
    sms.refresh_from_db()
    assert result.outcome == Outcome.HELD
    assert (sms.state, sms.attempts) == (State.QUEUED, 0)
    assert sms.next_attempt_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert memory_sms == []


# --- sweep -----------------------------------------------------------------


def test_the_sweep_finds_changes_whose_task_was_lost(shipment, memory_sms, outbox, eager_celery):
    change = change_to(shipment, "delivered")
    assert services.sweep().unplanned_changes == []  # too fresh: its task may still be on the way
    StatusChange.objects.filter(pk=change.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert [pk for pk, _at in services.sweep().unplanned_changes] == [change.pk]

    assert tasks.sweep_task.apply().get() == {"plans": 1, "notices": 0, "sends": 0}
    assert len(memory_sms) == 1 and len(outbox) == 1
    assert services.sweep().unplanned_changes == []


def test_the_sweep_enqueues_each_due_moment_once(shipment):
    """While a backlog drains, sweep after sweep finds the same rows; each is
    enqueued once, not once per sweep."""
    change = change_to(shipment, "delivered")
    StatusChange.objects.filter(pk=change.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    found = services.sweep()
    first = [tasks._first_time("change", pk, at) for pk, at in found.unplanned_changes]
    again = [tasks._first_time("change", pk, at) for pk, at in services.sweep().unplanned_changes]
    assert (first, again) == ([True], [False])


def test_the_sweep_finds_overdue_and_abandoned_notifications(make_shipment):
    overdue, abandoned, fresh, held_by_live_worker = [planned(make_shipment()) for _ in range(4)]
    now = timezone.now()
    Notification.objects.filter(pk=overdue.pk).update(next_attempt_at=now - timedelta(minutes=5))
    Notification.objects.filter(pk=abandoned.pk).update(state=State.SENDING, lease_until=now - timedelta(seconds=1))
    Notification.objects.filter(pk=held_by_live_worker.pk).update(
        state=State.SENDING, lease_until=now + timedelta(seconds=60)
    )
    Notification.objects.filter(channel="email").delete()
    due = services.sweep().due_notification_ids
    assert set(due) == {overdue.pk, abandoned.pk}
    assert fresh.pk not in due


def test_retention_sweep_deletes_old_pings_only(brand, settings):
    settings.LOCATION_PING_RETENTION_DAYS = 7
    driver = Driver.objects.create(brand=brand, ref="d1")
    now = timezone.now()
    old = LocationPing.objects.create(driver=driver, lat=51.5, lng=-0.1, recorded_at=now - timedelta(days=8))
    kept = LocationPing.objects.create(driver=driver, lat=51.5, lng=-0.1, recorded_at=now - timedelta(days=6))
    assert tasks.purge_location_pings_task.apply().get() == 1
    assert list(LocationPing.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not LocationPing.objects.filter(pk=old.pk).exists()


# --- delivery receipts -----------------------------------------------------


def test_receipts_move_forward_only(shipment):
    notification = planned(shipment)
    services.send_notification(notification_id=notification.pk)
    sid = Notification.objects.get(pk=notification.pk).provider_message_id
    assert services.record_delivery_receipt(provider_message_id=sid, status="sent")
    assert Notification.objects.get(pk=notification.pk).state == State.SENT
    services.record_delivery_receipt(provider_message_id=sid, status="delivered")
    services.record_delivery_receipt(provider_message_id=sid, status="undelivered", error_code="30003")
    notification.refresh_from_db()
    assert notification.state == State.DELIVERED
    assert notification.delivered_at is not None


def test_undelivered_receipt_marks_failed_with_the_code(shipment):
    notification = planned(shipment)
    services.send_notification(notification_id=notification.pk)
    sid = Notification.objects.get(pk=notification.pk).provider_message_id
    services.record_delivery_receipt(provider_message_id=sid, status="undelivered", error_code="30003")
    notification.refresh_from_db()
    assert notification.state == State.FAILED
    assert "30003" in notification.last_error
    assert not services.record_delivery_receipt(provider_message_id="SMunknown", status="delivered")


def test_channel_choices_cover_customer_and_brand(db):
    assert {c.value for c in Channel} == {"sms", "email", "webhook"}


def test_the_sweep_command_sends_what_is_due_in_process(shipment, memory_sms, eager_celery):
    from io import StringIO

    from django.core.management import call_command

    change = change_to(shipment, "delivered")
    StatusChange.objects.filter(pk=change.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    out = StringIO()
    call_command("notifications_sweep", stdout=out)
    assert "1 status change(s) to plan" in out.getvalue()
    assert len(memory_sms) == 1


def test_the_planner_claims_every_due_notification_in_the_planning_transaction(make_shipment, brand):
    brand.webhook_url, brand.webhook_secret = "https://hooks.acme.example/parcels", WEBHOOK_SECRET
    brand.save()
    changes = [change_to(make_shipment(), "delivered").pk for _ in range(2)]
    plan = services.plan_batch(changes)
    assert plan.due == []
    assert sorted((n.status_change_id, n.channel) for n in plan.claimed) == sorted(
        (change, channel) for change in changes for channel in ("sms", "email", "webhook")
    )
    rows = Notification.objects.filter(pk__in=[n.pk for n in plan.claimed])
    assert {(n.state, n.claim_id, n.attempts) for n in rows} == {(State.SENDING, plan.claim_id, 1)}
    assert all(n.lease_until > timezone.now() for n in rows)
    assert None not in set(StatusChange.objects.filter(pk__in=changes).values_list("processed_at", flat=True))
    # Nobody else can take them while the lease holds.
    assert services.send_notification(notification_id=plan.claimed[0].pk).outcome == Outcome.NOT_CLAIMED


def test_an_sms_held_for_quiet_hours_is_planned_but_not_claimed(make_shipment):
    shipment = make_shipment(recipient_timezone="Europe/London")
    with time_machine.travel(datetime(2026, 1, 15, 22, 0, tzinfo=UTC), tick=False):
        plan = services.plan_batch([change_to(shipment, "failed_attempt").pk])
    assert [n.channel for n in plan.claimed] == ["email"]
    assert Notification.objects.get(channel="sms").state == State.QUEUED


def test_a_planner_that_dies_before_sending_leaves_leases_the_sweep_recovers(shipment, memory_sms):
    plan = services.plan_batch([change_to(shipment, "delivered").pk])
    sms = next(n for n in plan.claimed if n.channel == "sms")
    # ... the worker dies here; later its leases have run out:
    Notification.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert sms.pk in services.sweep().due_notification_ids
    assert services.send_notification(notification_id=sms.pk).outcome == Outcome.SENT
    assert Notification.objects.get(pk=sms.pk).attempts == 2
    assert len(memory_sms) == 1


def test_planning_again_after_a_reset_stamp_claims_nothing_and_duplicates_nothing(shipment):
    change = change_to(shipment, "delivered")
    services.plan_notifications(status_change_id=change.pk)
    StatusChange.objects.filter(pk=change.pk).update(processed_at=None)
    plan = services.plan_batch([change.pk])
    assert plan.claimed == []
    assert sorted(plan.due) == sorted(Notification.objects.values_list("pk", flat=True))
    assert Notification.objects.count() == 2
    assert set(Notification.objects.values_list("state", flat=True)) == {State.QUEUED}


def test_planning_again_after_a_reset_stamp_claims_only_what_was_missing(shipment):
    change = change_to(shipment, "delivered")
    services.plan_batch([change.pk], claim=False)
    # The stamp reset by hand, and one of the two rows gone meanwhile.
    StatusChange.objects.filter(pk=change.pk).update(processed_at=None)
    Notification.objects.filter(channel="email").delete()
    plan = services.plan_batch([change.pk])
    assert [n.channel for n in plan.claimed] == ["email"]
    stored = {n.channel: n for n in Notification.objects.all()}
    assert (stored["email"].state, stored["email"].claim_id) == (State.SENDING, plan.claim_id)
    # The SMS planned before is queued and due: handed back to be sent, not claimed twice.
    assert plan.due == [stored["sms"].pk] and stored["sms"].state == State.QUEUED


def test_a_redelivered_plan_claims_nothing_and_leaves_what_is_queued_to_its_task_or_the_sweep(shipment):
    change = change_to(shipment, "delivered")
    services.plan_batch([change.pk])
    # The email failed once and waits for its retry.
    Notification.objects.filter(channel="email").update(state=State.QUEUED, claim_id=None, lease_until=None)
    assert services.plan_batch([change.pk]) == services.Plan(due=[])
    assert Notification.objects.filter(state=State.SENDING).count() == 1


def test_the_plan_task_sends_everything_due_itself(make_shipment, memory_sms, outbox, eager_celery):
    shipments = [make_shipment() for _ in range(3)]
    tasks.plan_notifications_task.apply(args=[[change_to(s, "delivered").pk for s in shipments]])
    assert len(memory_sms) == 3 and len(outbox) == 3
    assert set(Notification.objects.values_list("state", "attempts")) == {(State.SENT, 1)}


@pytest.fixture
def brand_endpoint(brand):
    """The brand's webhook endpoint, a local HTTP server that answers 200
    and keeps what it was sent."""
    with FakeEndpoint([]) as endpoint:
        brand.webhook_url, brand.webhook_secret = endpoint.url, WEBHOOK_SECRET
        brand.save()
        yield endpoint.received


def test_a_batch_records_each_outcome_and_logs_every_webhook_attempt(make_shipment, failing_sms, brand_endpoint):
    from notifications.transports import TransportError

    failing_sms.error = TransportError("HTTP 503")
    changes = [change_to(make_shipment(), "delivered").pk for _ in range(2)]
    results = dict(services.deliver_planned(services.plan_batch(changes)))
    states = dict(Notification.objects.values_list("pk", "state"))
    assert {pk: r.outcome for pk, r in results.items()} == {
        pk: (Outcome.RETRY if state == State.QUEUED else Outcome.SENT) for pk, state in states.items()
    }
    assert sorted(Notification.objects.values_list("channel", "state")) == sorted(
        [("email", State.SENT), ("sms", State.QUEUED), ("webhook", State.SENT)] * 2
    )
    assert WebhookAttempt.objects.filter(succeeded=True).count() == len(brand_endpoint) == 2
    assert not Notification.objects.filter(claim_id__isnull=False).exists()


def test_an_interrupted_batch_gives_back_the_sends_it_had_not_started(make_shipment, settings, monkeypatch):
    settings.NOTIFICATION_SEND_THREADS = 1
    monkeypatch.setattr(services, "_pool", None)
    started = threading.Event()
    release = threading.Event()

    SlowSms.started, SlowSms.release = started, release
    settings.SMS_BACKEND = f"{__name__}.SlowSms"
    plan = services.plan_batch([change_to(make_shipment(), "delivered").pk, change_to(make_shipment(), "delivered").pk])
    real_wait = services.wait

    def interrupted(futures, return_when):
        started.wait(5)
        raise KeyboardInterrupt  # as a soft time limit would, while waiting

    real_release = services._release

    def release_then_let_the_send_return(notifications, claim_id):
        real_release(notifications, claim_id)
        release.set()

    monkeypatch.setattr(services, "wait", interrupted)
    monkeypatch.setattr(services, "_release", release_then_let_the_send_return)
    with pytest.raises(KeyboardInterrupt):
        services.deliver_planned(plan)
    monkeypatch.setattr(services, "wait", real_wait)
    rows = list(Notification.objects.order_by("pk").values_list("state", "attempts", "claim_id"))
    # The one in flight was recorded as sent; the three never started are queued again, their attempt uncounted.
    assert sorted(state for state, _attempts, _claim in rows) == [State.QUEUED] * 3 + [State.SENT]
    assert {(attempts, claim) for state, attempts, claim in rows if state == State.QUEUED} == {(0, None)}


class SlowSms:
    started: threading.Event
    release: threading.Event

    def send(self, message):
        self.started.set()
        self.release.wait(5)
        return Sent("slow-1")


class BrokenSms:
    def send(self, message):
        raise ValueError("library surprise")


def test_an_unexpected_error_is_retried_and_then_fails_instead_of_looping(shipment, settings):
    settings.SMS_BACKEND = f"{__name__}.BrokenSms"
    notification = planned(shipment)
    for _ in range(6):
        Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
        services.send_notification(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.state == State.FAILED
    assert notification.last_error == "ValueError: library surprise"


def test_a_planner_that_is_behind_fills_its_batch_from_the_outbox(make_shipment, memory_sms):
    changes = [change_to(make_shipment(), "delivered").pk for _ in range(4)]
    # On time, a planner plans what it was given.
    assert {n.status_change_id for n in services.plan_batch(changes[:1], up_to=3).claimed} == {changes[0]}
    StatusChange.objects.update(created_at=timezone.now() - timedelta(seconds=1))
    # Behind, it takes the oldest waiting changes too, up to its batch size.
    plan = services.plan_batch(changes[3:], up_to=3)
    assert {n.status_change_id for n in plan.claimed} == {changes[1], changes[2], changes[3]}
    # The tasks queued for those find their work done and send nothing twice.
    assert services.plan_batch(changes[1:2], up_to=3) == services.Plan(due=[])


def test_a_change_whose_planning_fails_stays_in_the_outbox_and_the_others_go_ahead(make_shipment, monkeypatch):
    good, bad = (change_to(make_shipment(), "delivered") for _ in range(2))
    real_rows_for = services._rows_for

    def failing_for_one(change, now):
        if change.pk == bad.pk:
            raise ValueError("a template the renderer chokes on")
        return real_rows_for(change, now)

    monkeypatch.setattr(services, "_rows_for", failing_for_one)
    plan = services.plan_batch([good.pk, bad.pk])
    assert {n.status_change_id for n in plan.claimed} == {good.pk}
    assert StatusChange.objects.get(pk=bad.pk).processed_at is None
    assert StatusChange.objects.get(pk=good.pk).processed_at is not None


def test_a_brand_without_settings_is_not_asked_for_them_once_per_change(make_shipment, brand):
    BrandNotificationSettings.objects.filter(brand=brand).delete()
    changes = [change_to(make_shipment(), "delivered").pk for _ in range(3)]
    with CaptureQueriesContext(connection) as queries:
        plan = services.plan_batch(changes)
    table = BrandNotificationSettings._meta.db_table
    # Read with the status changes (one statement on PostgreSQL, one join
    # elsewhere), never on its own.
    assert not [q["sql"] for q in queries if q["sql"].lstrip().startswith("SELECT") and f'FROM "{table}"' in q["sql"]]
    assert {n.channel for n in plan.claimed} == {"sms", "email"}


def test_sends_that_came_back_together_are_recorded_in_one_statement(make_shipment, caplog):
    plan = services.plan_batch([change_to(make_shipment(), "delivered").pk for _ in range(3)])
    sms = [n for n in plan.claimed if n.channel == "sms"]
    assert len(sms) == 3
    # The third's lease ran out and another worker claimed it meanwhile.
    Notification.objects.filter(pk=sms[2].pk).update(claim_id=None, state=State.QUEUED)
    now = timezone.now()
    returned = [(n, now, Sent(f"SM{n.pk}")) for n in sms]
    with CaptureQueriesContext(connection) as queries:
        results = services._record_all(returned, plan.claim_id, [])
    assert [(pk, result.outcome) for pk, result in results] == [(n.pk, Outcome.SENT) for n in sms]
    if connection.vendor == "postgresql":
        assert len(queries) == 1
    rows = dict(Notification.objects.filter(pk__in=[n.pk for n in sms]).values_list("pk", "provider_message_id"))
    assert rows == {sms[0].pk: f"SM{sms[0].pk}", sms[1].pk: f"SM{sms[1].pk}", sms[2].pk: ""}
    assert Notification.objects.get(pk=sms[0].pk).state == State.SENT
    assert f"Notification {sms[2].pk} was sent but its claim had been taken over" in caplog.text
