"""Sending (notifications/sending.py): each notification at most once, its result recorded under its claim."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import planning, preferences, sending, sweep, tasks
from notifications.models import (
    Notification,
    SmsOptOut,
    State,
    WebhookAttempt,
)
from notifications.sending import SendOutcome
from notifications.transports import Sent
from shipments import services as shipment_services
from shipments.models import StatusChange

from ..conftest import event
from .test_planning import WEBHOOK_SECRET, change_to
from .test_transports import FakeEndpoint


def planned(shipment, status="delivered", channel="sms"):
    planning.plan_notifications(status_change_id=change_to(shipment, status).pk)
    return Notification.objects.get(shipment=shipment, channel=channel)


def test_send_claims_sends_and_records_the_provider_id(shipment, memory_sms):
    notification = planned(shipment)
    assert sending.send_notification(notification_id=notification.pk).outcome == SendOutcome.SENT
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
    assert sending.send_notification(notification_id=notification.pk).outcome == SendOutcome.NOT_CLAIMED
    assert memory_sms == []


def test_an_expired_lease_is_taken_over(shipment, memory_sms):
    notification = planned(shipment)
    Notification.objects.filter(pk=notification.pk).update(
        state=State.SENDING, lease_until=timezone.now() - timedelta(seconds=1), attempts=1
    )
    assert sending.send_notification(notification_id=notification.pk).outcome == SendOutcome.SENT
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
    sending.send_notification(notification_id=notification.pk)
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
        result = sending.send_notification(notification_id=notification.pk)
        notification.refresh_from_db()
        assert notification.attempts == attempt
        if attempt < 6:
            assert (result.outcome, notification.state) == (SendOutcome.RETRY, State.QUEUED)
            wait = (notification.next_attempt_at - timezone.now()).total_seconds()
            delays.append(wait)
            assert 0 < wait <= 30 * 2 ** (attempt - 1) + 1
            Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
        else:
            assert (result.outcome, notification.state) == (SendOutcome.FAILED, State.FAILED)
    assert delays == sorted(delays) or delays[-1] > delays[0]  # grows overall despite jitter
    assert notification.last_error == "HTTP 503"
    assert failing_sms.calls == 6


def test_a_permanent_failure_is_not_retried(shipment, failing_sms):
    from notifications.transports import TransportError

    failing_sms.error = TransportError("Invalid number", permanent=True)
    notification = planned(shipment)
    assert sending.send_notification(notification_id=notification.pk).outcome == SendOutcome.FAILED
    assert sending.send_notification(notification_id=notification.pk).outcome == SendOutcome.NOT_CLAIMED
    assert failing_sms.calls == 1


def test_retry_requeues_failed_ones_only(shipment, failing_sms, memory_sms, settings):
    from notifications.transports import TransportError

    failing_sms.error = TransportError("Invalid number", permanent=True)
    notification = planned(shipment)
    sending.send_notification(notification_id=notification.pk)
    email = Notification.objects.get(channel="email")
    assert sending.retry_failed(notification_ids=[notification.pk, email.pk]) == [notification.pk]
    settings.SMS_BACKEND = "memory"
    assert sending.send_notification(notification_id=notification.pk).outcome == SendOutcome.SENT
    assert len(memory_sms) == 1


def test_a_notification_that_is_not_due_yet_is_not_sent(shipment, memory_sms):
    notification = planned(shipment)
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert sending.send_notification(notification_id=notification.pk).outcome == SendOutcome.NOT_CLAIMED
    assert memory_sms == []


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


def test_stop_is_honoured_at_planning_and_at_sending(shipment, make_shipment, memory_sms):
    queued = planned(shipment, "out_for_delivery")
    preferences.handle_sms_reply(phone="+447700900123", text="Stop")
    assert sending.send_notification(notification_id=queued.pk).outcome == SendOutcome.NOT_CLAIMED
    assert Notification.objects.get(pk=queued.pk).state == State.SKIPPED

    other = make_shipment()
    planning.plan_notifications(status_change_id=change_to(other, "delivered").pk)
    assert not Notification.objects.filter(shipment=other, channel="sms").exists()
    assert Notification.objects.filter(shipment=other, channel="email").exists()
    assert memory_sms == []

    preferences.handle_sms_reply(phone="+447700900123", text="START")
    third = make_shipment()
    planning.plan_notifications(status_change_id=change_to(third, "delivered").pk)
    assert Notification.objects.filter(shipment=third, channel="sms").exists()


def test_other_replies_change_nothing(db):
    assert preferences.handle_sms_reply(phone="+447700900123", text="When will it arrive? Please stop by") is None
    assert not SmsOptOut.objects.exists()


def test_unsubscribed_between_planning_and_sending_is_skipped(shipment, outbox):
    notification = planned(shipment, channel="email")
    preferences.unsubscribe(subscription_id=notification.subscription_id)
    assert sending.send_notification(notification_id=notification.pk).outcome == SendOutcome.NOT_CLAIMED
    assert Notification.objects.get(pk=notification.pk).state == State.SKIPPED
    assert outbox == []


def test_a_claimed_row_whose_recipient_has_gone_is_skipped_not_sent(shipment, memory_sms):
    notification = planned(shipment)
    SmsOptOut.objects.create(phone="+447700900123")
    assert sending.send_notification(notification_id=notification.pk).outcome == SendOutcome.SKIPPED
    assert memory_sms == []


def test_a_held_sms_goes_out_through_the_sweep_in_the_morning(make_shipment, memory_sms):
    shipment = make_shipment(recipient_timezone="Europe/London")
    with time_machine.travel(datetime(2026, 11, 26, 23, 0, tzinfo=UTC), tick=False):
        due = planning.plan_notifications(status_change_id=change_to(shipment, "failed_attempt").pk)
        sms = Notification.objects.get(channel="sms")
        assert sms.pk not in due
        assert sms.pk not in sweep.sweep().due_notification_ids
        assert sending.send_notification(notification_id=sms.pk).outcome == SendOutcome.NOT_CLAIMED
    with time_machine.travel(datetime(2026, 11, 27, 8, 1, 30, tzinfo=UTC), tick=False):
        assert sms.pk in sweep.sweep().due_notification_ids
        assert sending.send_notification(notification_id=sms.pk).outcome == SendOutcome.SENT
    assert len(memory_sms) == 1


def test_a_retry_that_drifts_into_the_night_waits_for_the_morning(make_shipment, memory_sms):
    shipment = make_shipment(recipient_timezone="Europe/London")
    with time_machine.travel(datetime(2026, 11, 26, 20, 0, tzinfo=UTC), tick=False):
        planning.plan_notifications(status_change_id=change_to(shipment, "failed_attempt").pk)
        sms = Notification.objects.get(channel="sms")
    with time_machine.travel(datetime(2026, 11, 26, 21, 30, tzinfo=UTC), tick=False):
        result = sending.send_notification(notification_id=sms.pk)
    sms.refresh_from_db()
    assert result.outcome == SendOutcome.HELD
    assert (sms.state, sms.attempts) == (State.QUEUED, 0)
    assert sms.next_attempt_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert memory_sms == []


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
    results = dict(sending.deliver_planned(planning.plan_batch(changes)))
    states = dict(Notification.objects.values_list("pk", "state"))
    assert {pk: r.outcome for pk, r in results.items()} == {
        pk: (SendOutcome.RETRY if state == State.QUEUED else SendOutcome.SENT) for pk, state in states.items()
    }
    assert sorted(Notification.objects.values_list("channel", "state")) == sorted(
        [("email", State.SENT), ("sms", State.QUEUED), ("webhook", State.SENT)] * 2
    )
    assert WebhookAttempt.objects.filter(succeeded=True).count() == len(brand_endpoint) == 2
    assert not Notification.objects.filter(claim_id__isnull=False).exists()


def test_an_interrupted_batch_gives_back_the_sends_it_had_not_started(make_shipment, settings, monkeypatch):
    settings.NOTIFICATION_SEND_THREADS = 1
    monkeypatch.setattr(sending, "_pool", None)
    started = threading.Event()
    release = threading.Event()

    SlowSms.started, SlowSms.release = started, release
    settings.SMS_BACKEND = f"{__name__}.SlowSms"
    plan = planning.plan_batch([change_to(make_shipment(), "delivered").pk, change_to(make_shipment(), "delivered").pk])
    real_wait = sending.wait

    def interrupted(futures, return_when):
        started.wait(5)
        raise KeyboardInterrupt  # as a soft time limit would, while waiting

    real_release = sending._release

    def release_then_let_the_send_return(notifications, claim_id):
        real_release(notifications, claim_id)
        release.set()

    monkeypatch.setattr(sending, "wait", interrupted)
    monkeypatch.setattr(sending, "_release", release_then_let_the_send_return)
    with pytest.raises(KeyboardInterrupt):
        sending.deliver_planned(plan)
    monkeypatch.setattr(sending, "wait", real_wait)
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
        sending.send_notification(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.state == State.FAILED
    assert notification.last_error == "ValueError: library surprise"


def test_sends_that_came_back_together_are_recorded_in_one_statement(make_shipment, caplog):
    plan = planning.plan_batch([change_to(make_shipment(), "delivered").pk for _ in range(3)])
    sms = [n for n in plan.claimed if n.channel == "sms"]
    assert len(sms) == 3
    # The third's lease ran out and another worker claimed it meanwhile.
    Notification.objects.filter(pk=sms[2].pk).update(claim_id=None, state=State.QUEUED)
    now = timezone.now()
    returned = [(n, now, Sent(f"SM{n.pk}")) for n in sms]
    with CaptureQueriesContext(connection) as queries:
        results = sending._record_all(returned, plan.claim_id, [])
    assert [(pk, result.outcome) for pk, result in results] == [(n.pk, SendOutcome.SENT) for n in sms]
    if connection.vendor == "postgresql":
        assert len(queries) == 1
    rows = dict(Notification.objects.filter(pk__in=[n.pk for n in sms]).values_list("pk", "provider_message_id"))
    assert rows == {sms[0].pk: f"SM{sms[0].pk}", sms[1].pk: f"SM{sms[1].pk}", sms[2].pk: ""}
    assert Notification.objects.get(pk=sms[0].pk).state == State.SENT
    assert f"Notification {sms[2].pk} was sent but its claim had been taken over" in caplog.text


@pytest.mark.postgres
def test_the_written_out_sent_update_writes_what_the_orm_writes(make_shipment):
    if connection.vendor != "postgresql":
        pytest.skip("the written-out statement is PostgreSQL's (set DATABASE_URL)")
    plan = planning.plan_batch([change_to(make_shipment(), "delivered").pk for _ in range(4)])
    sms = [n for n in plan.claimed if n.channel == "sms"]
    # The second of each pair was taken over by another worker meanwhile.
    Notification.objects.filter(pk__in=[sms[1].pk, sms[3].pk]).update(claim_id=None, state=State.QUEUED)
    now = timezone.now()
    by_sql = sending._mark_sent_sql([(sms[0], "SMa"), (sms[1], "SMb")], plan.claim_id, now)
    by_orm = sending._mark_sent_orm([(sms[2], "SMa"), (sms[3], "SMb")], plan.claim_id, now)
    assert (by_sql, by_orm) == ({sms[0].pk}, {sms[2].pk})
    written = ["state", "provider_message_id", "sent_at", "last_error", "claim_id", "lease_until", "attempts"]
    rows = {n["id"]: [n[name] for name in written] for n in Notification.objects.values("id", *written)}
    assert rows[sms[0].pk] == rows[sms[2].pk]
    assert rows[sms[1].pk] == rows[sms[3].pk]
    assert rows[sms[0].pk][:2] == [State.SENT, "SMa"]
