"""A status change's emails follow its texts and webhook in a task of their
own (notifications.tasks.LATER, sending.deliver_together), sent once and only
while still wanted."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import planning, rules, sending, sweep, tasks
from notifications.models import Channel, Notification, SmsOptOut, State, Subscription
from notifications.sending import SendOutcome
from shipments.models import StatusChange

from .test_planning import change_to


def states() -> dict[str, str]:
    return dict(Notification.objects.values_list("channel", "state"))


def test_planning_leaves_the_emails_queued_for_later_and_claims_the_rest(shipment):
    change = change_to(shipment, "delivered")
    plan = planning.plan_batch([change.pk], later=tasks.LATER)
    email = Notification.objects.get(channel=Channel.EMAIL)
    assert [n.channel for n in plan.claimed] == [Channel.SMS]
    assert plan.later == [email.pk] and plan.due == []
    assert (email.state, email.claim_id, email.attempts) == (State.QUEUED, None, 0)
    assert email.next_attempt_at <= timezone.now()


def test_the_planning_task_sends_the_text_at_once_and_the_email_through_its_later_task(
    shipment, memory_sms, outbox, eager_celery, monkeypatch
):
    handed = []
    monkeypatch.setattr(tasks, "enqueue_later", handed.append)
    change = change_to(shipment, "delivered")
    tasks.plan_notifications_task([change.pk])
    assert len(memory_sms) == 1 and outbox == []
    assert states() == {Channel.SMS: State.SENT, Channel.EMAIL: State.QUEUED}
    [ids] = handed
    tasks.send_later_task(ids)
    assert [message.to for message in outbox] == [[shipment.recipient_email.lower()]]
    assert states() == {Channel.SMS: State.SENT, Channel.EMAIL: State.SENT}


def test_in_process_the_email_goes_out_after_the_text(shipment, memory_sms, outbox, eager_celery, monkeypatch):
    handed = tasks.enqueue_later
    texts_sent_by_then = []

    def enqueue_later(ids):
        texts_sent_by_then.append(len(memory_sms))
        return handed(ids)

    monkeypatch.setattr(tasks, "enqueue_later", enqueue_later)
    tasks.plan_notifications_task([change_to(shipment, "delivered").pk])
    assert texts_sent_by_then == [1]
    assert len(outbox) == 1
    assert states()[Channel.EMAIL] == State.SENT


def test_planning_that_finds_rows_made_before_still_leaves_its_new_emails_for_later(shipment):
    change = change_to(shipment, "delivered")
    planning.plan_batch([change.pk], claim=False)
    # The stamp reset by hand, and the email's row gone meanwhile.
    StatusChange.objects.filter(pk=change.pk).update(processed_at=None)
    Notification.objects.filter(channel=Channel.EMAIL).delete()
    plan = planning.plan_batch([change.pk], later=tasks.LATER)
    email, sms = (Notification.objects.get(channel=channel) for channel in (Channel.EMAIL, Channel.SMS))
    assert plan.later == [email.pk] and plan.due == [sms.pk] and plan.claimed == []


def test_an_email_whose_later_task_could_not_be_enqueued_is_left_for_the_sweep(shipment, outbox, monkeypatch):
    def refused(*args, **kwargs):
        raise OSError("broker away")

    monkeypatch.setattr(tasks.send_later_task, "apply_async", refused)
    tasks.plan_notifications_task([change_to(shipment, "delivered").pk])
    email = Notification.objects.get(channel=Channel.EMAIL)
    assert email.state == State.QUEUED and outbox == []
    later = timezone.now() + sweep.sweep_grace() + timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        assert email.pk in sweep.sweep().due_notification_ids


def test_a_redelivered_later_task_sends_nothing_again(shipment, outbox):
    plan = planning.plan_batch([change_to(shipment, "delivered").pk], later=tasks.LATER)
    first = sending.deliver_together(plan.later)
    assert [result.outcome for _, result in first] == [SendOutcome.SENT]
    assert sending.deliver_together(plan.later) == []
    assert len(outbox) == 1
    assert Notification.objects.get(channel=Channel.EMAIL).attempts == 1


def test_a_claim_held_by_another_sender_is_left_to_it(shipment, outbox):
    plan = planning.plan_batch([change_to(shipment, "delivered").pk], later=tasks.LATER)
    # The sweep's send took it first and is sending it now.
    Notification.objects.filter(pk__in=plan.later).update(
        state=State.SENDING, lease_until=timezone.now() + timedelta(minutes=1)
    )
    assert sending.deliver_together(plan.later) == [] and outbox == []


def test_what_changed_since_planning_is_read_again(make_shipment, brand, memory_sms, outbox):
    gone, stopped, kept = make_shipment(), make_shipment(recipient_phone="+447700900456"), make_shipment()
    plan = planning.plan_batch([change_to(s, "delivered").pk for s in (gone, stopped, kept)])
    # Planned moments ago; meanwhile one customer unsubscribed and another replied STOP.
    Notification.objects.filter(pk__in=[n.pk for n in plan.claimed]).update(
        state=State.QUEUED, claim_id=None, lease_until=None, attempts=0
    )
    Subscription.objects.filter(shipment=gone, channel=Channel.EMAIL).update(active=False)
    SmsOptOut.objects.create(phone=stopped.recipient_phone)
    results = dict(sending.deliver_together([n.pk for n in plan.claimed]))
    outcome = {(n.shipment_id, n.channel): results[n.pk].outcome for n in plan.claimed}
    assert outcome == {
        (gone.pk, Channel.SMS): SendOutcome.SENT,
        (gone.pk, Channel.EMAIL): SendOutcome.SKIPPED,
        (stopped.pk, Channel.SMS): SendOutcome.SKIPPED,
        (stopped.pk, Channel.EMAIL): SendOutcome.SENT,
        (kept.pk, Channel.SMS): SendOutcome.SENT,
        (kept.pk, Channel.EMAIL): SendOutcome.SENT,
    }
    assert sorted(to for [to] in (m.to for m in outbox)) == sorted(
        [stopped.recipient_email.lower(), kept.recipient_email.lower()]
    )
    assert sorted(m.to for m in memory_sms) == sorted([gone.recipient_phone, kept.recipient_phone])
    skipped = Notification.objects.filter(state=State.SKIPPED)
    assert sorted(skipped.values_list("last_error", flat=True)) == ["Recipient replied STOP.", "Unsubscribed."]


def test_a_text_handed_over_in_the_recipients_night_waits_for_the_morning(make_shipment, memory_sms):
    shipment = make_shipment(recipient_timezone="Europe/London")
    plan = planning.plan_batch([change_to(shipment, "failed_attempt").pk], claim=False)
    sms = Notification.objects.get(channel=Channel.SMS)
    with time_machine.travel(datetime(2026, 1, 15, 22, 0, tzinfo=UTC), tick=False):
        Notification.objects.filter(pk=sms.pk).update(next_attempt_at=timezone.now())
        [(pk, result)] = sending.deliver_together([sms.pk])
    assert pk == sms.pk and plan.due
    assert result.outcome == SendOutcome.HELD and result.retry_in == pytest.approx(10 * 3600)
    sms.refresh_from_db()
    assert (sms.state, sms.attempts, memory_sms) == (State.QUEUED, 0, [])


def not_records(captured) -> list[str]:
    """The statements but those recording sends: the sending threads' sends
    are recorded as they come back, several or one at a time."""
    return [q["sql"] for q in captured.captured_queries if "SET \"state\" = 'sent'" not in q["sql"]]


@pytest.mark.postgres
def test_a_batch_of_emails_is_claimed_and_checked_in_a_few_queries(make_shipment, outbox):
    def later_of(count: int) -> list[int]:
        changes = [change_to(make_shipment(), "delivered").pk for _ in range(count)]
        return planning.plan_batch(changes, later=tasks.LATER).later

    few, many = later_of(2), later_of(12)
    with CaptureQueriesContext(connection) as two:
        sending.deliver_together(few)
    with CaptureQueriesContext(connection) as twelve:
        sending.deliver_together(many)
    assert len(outbox) == 14
    # The claim, the read and the subscriptions: none of them once per email.
    assert len(not_records(twelve)) == len(not_records(two))


@pytest.mark.postgres
def test_a_vans_notices_are_claimed_and_sent_together(make_shipment, memory_sms, outbox):
    from shipments import alerts
    from shipments.alert_rules import AlertKind
    from shipments.models import Notice

    zone = next(z for z in ("UTC", "Pacific/Auckland") if not rules.in_quiet_hours(timezone.now(), z))

    def notices_of(count: int) -> list[int]:
        shipments = [make_shipment(recipient_timezone=zone) for _ in range(count)]
        for shipment in shipments:
            alerts.open_alert(shipment=shipment, kind=AlertKind.MISSED_SCAN, now=timezone.now(), detail={})
        return list(Notice.objects.filter(shipment__in=shipments).values_list("pk", flat=True))

    few, many = notices_of(2), notices_of(8)
    tasks.plan_notices_task(few)
    with CaptureQueriesContext(connection) as eight:
        tasks.plan_notices_task(many)
    tasks.plan_notices_task(many)  # redelivered
    assert (len(memory_sms), len(outbox)) == (10, 10)
    assert set(Notification.objects.values_list("state", flat=True)) == {State.SENT}
    claims = [q["sql"] for q in eight.captured_queries if q["sql"].startswith('UPDATE "notifications_notification"')]
    # One claim for the task's 24 messages (SMS, email and webhook of each
    # of 8 notices), not one per message.
    assert sum("SET \"state\" = 'sending'" in sql for sql in claims) == 1


def test_the_sweep_hands_an_email_left_waiting_back_to_its_queue_and_a_text_to_the_default_one(shipment, monkeypatch):
    later, sends = [], []
    monkeypatch.setattr(tasks, "enqueue_later", lambda ids: later.append(ids) or True)
    monkeypatch.setattr(tasks, "enqueue_sends", lambda ids: sends.append(ids) or len(ids))
    planning.plan_batch([change_to(shipment, "delivered").pk], claim=False)
    by_channel = dict(Notification.objects.values_list("channel", "pk"))
    with time_machine.travel(timezone.now() + sweep.sweep_grace() + timedelta(seconds=1), tick=False):
        assert tasks.sweep_task.apply().get()["sends"] == 2
    assert later == [[by_channel[Channel.EMAIL]]]
    assert sends == [[by_channel[Channel.SMS]]]


def test_a_send_that_would_start_near_the_end_of_its_lease_is_given_back_not_sent(make_shipment, memory_sms, outbox):
    plan = planning.plan_batch([change_to(make_shipment(), "delivered").pk])
    assert len(plan.claimed) == 2
    # The sending threads were busy with other tasks' sends until now.
    for notification in plan.claimed:
        notification.lease_until = timezone.now() + sending.LEASE_MARGIN - timedelta(seconds=1)
    results = sending.deliver_planned(plan)
    assert {result.outcome for _, result in results} == {SendOutcome.RETRY}
    assert (memory_sms, outbox) == ([], [])
    rows = Notification.objects.all()
    assert {(n.state, n.claim_id, n.attempts) for n in rows} == {(State.QUEUED, None, 0)}


def test_the_sweep_hands_an_email_waiting_too_long_to_the_default_queue(shipment, monkeypatch):
    later, sends = [], []
    monkeypatch.setattr(tasks, "enqueue_later", lambda ids: later.append(ids) or True)
    monkeypatch.setattr(tasks, "enqueue_sends", lambda ids: sends.append(ids) or len(ids))
    planning.plan_batch([change_to(shipment, "delivered").pk], claim=False)
    with time_machine.travel(timezone.now() + tasks.LATER_PATIENCE + timedelta(seconds=1), tick=False):
        assert tasks.sweep_task.apply().get()["sends"] == 2
    assert later == [] and sorted(*sends) == sorted(Notification.objects.values_list("pk", flat=True))
