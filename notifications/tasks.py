"""Thin Celery tasks: they take ids, call a service and enqueue what comes
next. Retries are rows with a next attempt time, not Celery retries, so
that the schedule survives a broker restart and the sweep can find it."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from kombu.exceptions import OperationalError

from tracking_portal import redis as shared_redis

from . import notices, planning, sending, sweep
from .models import Channel, Notification

logger = logging.getLogger(__name__)

# A countdown longer than the broker's visibility timeout would make Redis
# hand the unacknowledged task to a second worker; later retries are left to
# the sweep, which reads next_attempt_at.
MAX_COUNTDOWN = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600) - 600
# Publishing while Redis is down should fail fast: the outbox keeps the work
# and the sweep enqueues it again.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.1, "interval_max": 0.2}


def _publishing():
    """Around a publish: while a Redis broker is in an outage
    (tracking_portal.redis), fail at once rather than wait on it again;
    a publish that could not reach it starts one."""
    url = plan_notifications_task.app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://")):
        return contextlib.nullcontext()
    return shared_redis.outage_of(url).watch(errors=(OperationalError, *shared_redis.OUTAGE_ERRORS))


def _published(task, args: tuple, what: str, countdown: float | None = None) -> bool:
    """Publish one task; False, logged, when the broker did not take it. The
    work it carries stays in the database (an unprocessed status change or
    notice, a queued notification) for the sweep."""
    try:
        with _publishing():
            task.apply_async(args, countdown=countdown, retry_policy=PUBLISH_RETRY)
    except Exception:
        logger.warning("Could not enqueue %s; the sweep will pick them up.", what, exc_info=True)
        return False
    return True


# A batch of status changes is planned in chunks: few enough messages that
# enqueueing a thousand changes costs a few round trips, enough chunks that
# the workers share the planning.
PLAN_CHUNK = 50


def enqueue_plans(status_change_ids: list[int]) -> int:
    """Enqueue planning for these status changes; the number enqueued. What
    fails to enqueue stays unprocessed in the outbox for the sweep."""
    return _in_chunks(
        status_change_ids,
        lambda chunk: _published(plan_notifications_task, (chunk,), f"planning of status changes {chunk}"),
    )


def _in_chunks(ids: list[int], publish) -> int:
    """Hand ``ids`` to ``publish`` PLAN_CHUNK at a time, until it refuses
    one (it returns False: the broker is away, and the rest would fail the
    same way); the number handed over."""
    enqueued = 0
    for start in range(0, len(ids), PLAN_CHUNK):
        chunk = ids[start : start + PLAN_CHUNK]
        if not publish(chunk):
            break
        enqueued += len(chunk)
    return enqueued


class PlanPublisher:
    """Publishes planning from a thread of its own, at most one message per
    ``interval`` seconds per process: a status change committed when none
    was published lately goes out at once; under load, the changes of the
    next ``interval`` wait to share one message (and one planning
    transaction in the worker) instead of a message each. The writer never
    waits for Redis.

    Ids still waiting here when the process dies are not lost: their status
    changes stay unprocessed in the outbox and the sweep plans them.
    """

    def __init__(self, interval: float, publish=None):
        self.interval = interval
        self.publish = publish or enqueue_plans
        self._after_fork()
        self._last = 0.0
        # A fork's child starts with fresh locks: the parent's thread may
        # have held them at the moment of the fork, and does not exist there.
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._pending: list[int] = []
        self._condition = threading.Condition()
        self._publishing = threading.Lock()
        self._pid = None

    def submit(self, status_change_ids: list[int]) -> None:
        with self._condition:
            if self._pid != os.getpid():
                # First use in this process (or a fork's child, where the
                # parent's thread does not exist).
                self._pid, self._pending = os.getpid(), []
                threading.Thread(target=self._run, name="notify-publisher", daemon=True).start()
            self._pending.extend(status_change_ids)
            self._condition.notify()

    def flush(self) -> None:
        """Publish what is waiting, now, in the calling thread, once any
        publishing under way has finished."""
        with self._publishing:
            with self._condition:
                waiting, self._pending = self._pending, []
            self._publish(waiting)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending:
                    self._condition.wait()
            time.sleep(max(0.0, self._last + self.interval - time.monotonic()))
            self._last = time.monotonic()
            self.flush()

    def _publish(self, status_change_ids: list[int]) -> None:
        if not status_change_ids:
            return
        try:
            self.publish(status_change_ids)
        except Exception:
            logger.exception("Could not publish planning of %d status changes.", len(status_change_ids))


publisher = PlanPublisher(settings.NOTIFICATION_PUBLISH_INTERVAL_MS / 1000)
atexit.register(publisher.flush)


def plan_soon(status_change_ids: list[int]) -> None:
    """Have these committed status changes planned: through the publisher
    thread when a broker takes the message, right here in-process (eager)."""
    _soon(publisher, enqueue_plans, status_change_ids)


# A van's recompute leaves a few notices at a time (the parcels whose
# window moved), and a worker recomputes many vans a second in a rush:
# they share a task the way status changes do. (enqueue_notice_plans is
# looked up when called: it is defined below.)
notice_publisher = PlanPublisher(
    settings.NOTIFICATION_PUBLISH_INTERVAL_MS / 1000, publish=lambda ids: enqueue_notice_plans(ids)
)
atexit.register(notice_publisher.flush)


def plan_notices_soon(notice_ids: list[int]) -> None:
    """plan_soon for committed notices."""
    _soon(notice_publisher, enqueue_notice_plans, notice_ids)


def _soon(through: PlanPublisher, enqueue, ids: list[int]) -> None:
    if plan_notifications_task.app.conf.task_always_eager or through.interval <= 0:
        enqueue(ids)
    else:
        through.submit(ids)


def enqueue_sends(notification_ids, countdown: float | None = None) -> int:
    enqueued = 0
    for notification_id in notification_ids:
        if not _published(send_notification_task, (notification_id,), f"notification {notification_id}", countdown):
            break
        enqueued += 1
    return enqueued


# What a status change's planning task leaves to a task behind it: an email
# is read minutes later, while a text and a brand's webhook are acted on at
# once, and the email's MIME message costs the worker more than the other
# two together (bench/notify_cost.py). Its task waits in the "later" queue,
# which the messages worker takes only when the default queue and the
# notices' are empty (settings' CELERY_TASK_QUEUES), so that in a rush of
# status changes the webhooks and texts keep pace and the emails follow.
LATER = (Channel.EMAIL,)
LATER_PATIENCE = timedelta(minutes=10)


@shared_task(name="notifications.plan")
def plan_notifications_task(status_change_ids: list[int] | int) -> None:
    """Plan the changes and send what is due right here: it was claimed
    while planning, so a batch of changes costs one planning transaction
    and no further queue hops; its emails go to a task of their own
    (LATER). (A single id is what older messages still in the queue carry.)"""
    if isinstance(status_change_ids, int):
        status_change_ids = [status_change_ids]
    plan = planning.plan_batch(status_change_ids, up_to=PLAN_CHUNK, later=LATER)
    enqueue_sends(plan.due)
    try:
        for notification_id, result in sending.deliver_planned(plan):
            if result.retry_in is not None:
                schedule_retry(notification_id, result.retry_in)
    finally:
        # After the texts and webhooks, so that no publish stands before
        # them (and in-process the emails are sent after them too).
        enqueue_later(plan.later)


def enqueue_later(notification_ids: list[int]) -> bool:
    """Hand these queued notifications to one task behind the planning.
    Should the broker refuse, they stay queued and due, and the sweep
    enqueues them."""
    return not notification_ids or _published(send_later_task, (notification_ids,), f"notifications {notification_ids}")


@shared_task(name="notifications.send_later")
def send_later_task(notification_ids: list[int]) -> None:
    send_together(notification_ids)


def send_together(notification_ids: list[int]) -> None:
    for notification_id, result in sending.deliver_together(notification_ids):
        if result.retry_in is not None:
            schedule_retry(notification_id, result.retry_in)


def enqueue_notice_plans(notice_ids: list[int]) -> int:
    """Enqueue planning for these notices; the number enqueued. What fails
    to enqueue stays unprocessed in the outbox for the sweep."""
    return _in_chunks(notice_ids, lambda chunk: _published(plan_notices_task, (chunk,), f"planning of notices {chunk}"))


@shared_task(name="notifications.plan_notices")
def plan_notices_task(notice_ids: list[int]) -> None:
    """Plan the notices and send what is due right here, claimed together
    and sent in parallel: a van's new ETAs can leave a notice for each of
    its parcels at once. The claim keeps a redelivered task from sending
    twice."""
    send_together(notices.plan_notices(notice_ids=notice_ids))


@shared_task(name="notifications.send")
def send_notification_task(notification_id: int) -> str:
    result = sending.send_notification(notification_id=notification_id)
    if result.retry_in is not None:
        schedule_retry(notification_id, result.retry_in)
    return result.outcome.value


def schedule_retry(notification_id: int, delay: float) -> None:
    # In-process (eager) mode a countdown would run at once, recursively;
    # there the sweep (manage.py notifications_sweep) comes back for it.
    if send_notification_task.app.conf.task_always_eager or delay > MAX_COUNTDOWN:
        return
    enqueue_sends([notification_id], countdown=delay)


# While a backlog drains, the same overdue row turns up in sweep after
# sweep; each due moment of a row is enqueued once in this window, so the
# sweep cannot pile copies onto a queue that is already long.
SWEEP_ENQUEUED_TTL = 300


def _first_time(kind: str, pk: int, due_at: float) -> bool:
    return cache.add(f"notifications:sweep:{kind}:{pk}:{due_at}", 1, SWEEP_ENQUEUED_TTL)


@shared_task(name="notifications.sweep")
def sweep_task() -> dict[str, int]:
    result = sweep.sweep()
    plans = [pk for pk, at in result.unplanned_changes if _first_time("change", pk, at)]
    notice_plans = [pk for pk, at in notices.unplanned() if _first_time("notice", pk, at)]
    due = [(pk, at) for pk, at in result.due_notifications if _first_time("notification", pk, at)]
    sends = [pk for pk, _at in due]
    # An email waiting behind a rush is handed back to the queue it waits
    # in, a batch to a task, rather than jump the texts and webhooks; one
    # waiting longer than LATER_PATIENCE goes to the default queue, so that
    # a rush that never ends does not keep it back for ever.
    patient = time.time() - LATER_PATIENCE.total_seconds()
    emails = set(Notification.objects.filter(pk__in=sends, channel__in=LATER).values_list("pk", flat=True))
    later = {pk for pk, at in due if pk in emails and at > patient}
    planned = enqueue_plans(plans)
    planned_notices = enqueue_notice_plans(notice_plans)
    handed_back = _in_chunks([pk for pk in sends if pk in later], enqueue_later)
    sent = enqueue_sends([pk for pk in sends if pk not in later])
    return {"plans": planned, "notices": planned_notices, "sends": sent + handed_back}
