"""The sweep (notifications/sweep.py): what the normal path lost is found."""

from datetime import timedelta

from django.utils import timezone

from notifications import sweep, tasks
from notifications.models import (
    Notification,
    State,
)
from shipments.models import StatusChange

from .test_planning import change_to
from .test_sending import planned


def test_the_sweep_finds_changes_whose_task_was_lost(shipment, memory_sms, outbox, eager_celery):
    change = change_to(shipment, "delivered")
    assert sweep.sweep().unplanned_changes == []  # too fresh: its task may still be on the way
    StatusChange.objects.filter(pk=change.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert [pk for pk, _at in sweep.sweep().unplanned_changes] == [change.pk]

    assert tasks.sweep_task.apply().get() == {"plans": 1, "notices": 0, "sends": 0}
    assert len(memory_sms) == 1 and len(outbox) == 1
    assert sweep.sweep().unplanned_changes == []


def test_the_sweep_enqueues_each_due_moment_once(shipment):
    """While a backlog drains, sweep after sweep finds the same rows; each is
    enqueued once, not once per sweep."""
    change = change_to(shipment, "delivered")
    StatusChange.objects.filter(pk=change.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    found = sweep.sweep()
    first = [tasks._first_time("change", pk, at) for pk, at in found.unplanned_changes]
    again = [tasks._first_time("change", pk, at) for pk, at in sweep.sweep().unplanned_changes]
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
    due = sweep.sweep().due_notification_ids
    assert set(due) == {overdue.pk, abandoned.pk}
    assert fresh.pk not in due


def test_the_sweep_command_sends_what_is_due_in_process(shipment, memory_sms, eager_celery):
    from io import StringIO

    from django.core.management import call_command

    change = change_to(shipment, "delivered")
    StatusChange.objects.filter(pk=change.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    out = StringIO()
    call_command("notifications_sweep", stdout=out)
    assert "1 status change(s) to plan" in out.getvalue()
    assert len(memory_sms) == 1
