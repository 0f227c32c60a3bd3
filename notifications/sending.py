"""Sending: one claimed notification at a time to its transport, and what
came back recorded while the claim is still the sender's.

The rule it keeps: a notification is sent at most once, unless a worker
dies in the one window marked in ``_record_all``. A sender claims a row
with a conditional update and a lease (planning may have claimed it
already, see notifications.planning); every write after the send applies
only while that claim is still its own (``_still_claimed``), so a worker
whose lease ran out and was taken over changes nothing.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from shipments import bulk
from shipments.recipients import recipient_zone

from . import alert_messages, outgoing, rules
from .models import Channel, Notification, SmsOptOut, State, Subscription, WebhookAttempt
from .planning import Plan, lease_seconds
from .transports import Sent, TransportError, get_transport
from .transports.sms import TWILIO_OPTED_OUT

logger = logging.getLogger(__name__)


class SendOutcome(enum.StrEnum):
    """What one attempt at sending a notification came to."""

    SENT = "sent"
    NOT_CLAIMED = "not_claimed"  # someone else holds it, or it is done
    HELD = "held"  # quiet hours: goes out later
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    retry_in: float | None = None


def _claimable(now) -> Q:
    return Q(state=State.QUEUED, next_attempt_at__lte=now) | Q(state=State.SENDING, lease_until__lt=now)


def send_notification(*, notification_id: int) -> SendResult:
    """Send one notification at most once, unless a worker dies in the one
    window marked below.

    The claim is a conditional UPDATE: it succeeds for exactly one worker,
    and only while the row is queued and due, or its previous claim's lease
    has run out (that worker died). A redelivered task finds nothing to
    claim and does nothing.
    """
    now = timezone.now()
    claim_id = uuid.uuid4()
    claimed = (
        Notification.objects.filter(_claimable(now), pk=notification_id).update(
            state=State.SENDING,
            claim_id=claim_id,
            lease_until=now + timedelta(seconds=lease_seconds()),
            attempts=F("attempts") + 1,
        )
        == 1
    )
    if not claimed:
        return SendResult(SendOutcome.NOT_CLAIMED)
    notification = Notification.objects.select_related("shipment__brand", "status_change", "notice").get(
        pk=notification_id
    )
    return deliver_claimed(notification, claim_id=claim_id, now=now)


def deliver_claimed(notification: Notification, *, claim_id: uuid.UUID, now=None) -> SendResult:
    """Send a notification this worker has claimed, and record the result
    only while the claim is still its own."""
    now = now or timezone.now()
    held = _skipped_or_held(notification, _still_claimed(notification, claim_id), now, _still_wanted(notification, now))
    if held is not None:
        return held
    attempts: list[WebhookAttempt] = []
    result = _record(notification, claim_id, *_send(notification), attempts)
    bulk.insert(attempts, timezone.now())
    return result


def _skipped_or_held(notification: Notification, still_claimed, now, refusal: str | None) -> SendResult | None:
    """Before a claimed notification goes out: skipped for good when it is
    no longer wanted (``refusal``), put back until the morning when it is
    an SMS that would arrive in the recipient's night; None to send it."""
    if refusal is not None:
        still_claimed.update(state=State.SKIPPED, last_error=refusal, claim_id=None, lease_until=None)
        return SendResult(SendOutcome.SKIPPED)
    if notification.channel == Channel.SMS:
        shipment = notification.shipment
        # A notice's message has no status: it waits out the night.
        not_before = rules.earliest_sms_time(now, tz_name=recipient_zone(shipment).key, status=notification.new_status)
        if not_before > now:
            # A retry that drifted into the night waits for the morning; it
            # was not an attempt.
            still_claimed.update(
                state=State.QUEUED,
                next_attempt_at=not_before,
                claim_id=None,
                lease_until=None,
                attempts=F("attempts") - 1,
            )
            return SendResult(SendOutcome.HELD, retry_in=(not_before - now).total_seconds())
    return None


def deliver_together(notification_ids: list[int]) -> list[tuple[int, SendResult]]:
    """Claim these queued notifications together and send them as a plan's
    are: what a planning task left for a task behind it (its emails, while
    its texts and webhooks went out), or the notices' messages. Time may
    have passed since planning, so unsubscribes, STOP replies and quiet
    hours are read again, for all of them in two queries (and a notice's
    own conditions, per notice). A redelivered task finds nothing to claim."""
    now = timezone.now()
    claim_id = uuid.uuid4()
    Notification.objects.filter(_claimable(now), pk__in=list(notification_ids)).update(
        state=State.SENDING,
        claim_id=claim_id,
        lease_until=now + timedelta(seconds=lease_seconds()),
        attempts=F("attempts") + 1,
    )
    claimed = list(
        Notification.objects.select_related("shipment__brand", "status_change", "notice")
        .filter(pk__in=list(notification_ids), state=State.SENDING, claim_id=claim_id)
        .order_by("pk")
    )
    active = set(
        Subscription.objects.filter(pk__in={n.subscription_id for n in claimed}, active=True).values_list(
            "pk", flat=True
        )
    )
    phones = {n.recipient for n in claimed if n.channel == Channel.SMS}
    opted_out = set(SmsOptOut.objects.filter(phone__in=phones).values_list("phone", flat=True)) if phones else set()
    results, plan = [], Plan(due=[], claim_id=claim_id)
    for notification in claimed:
        refusal = _still_wanted(notification, now, active=active, opted_out=opted_out)
        held = _skipped_or_held(notification, _still_claimed(notification, claim_id), now, refusal)
        if held is None:
            plan.claimed.append(notification)
        else:
            results.append((notification.pk, held))
    return results + (deliver_planned(plan) if plan.claimed else [])


def deliver_planned(plan: Plan) -> list[tuple[int, SendResult]]:
    """Send what a plan claimed, and record each result the moment its send
    returns. The subscriptions, opt-outs and quiet hours were read in the
    planning transaction moments ago, so they are not read again. Several
    sends run in parallel (SMS, email and webhooks wait on other people's
    servers); the database work stays in this thread."""
    attempts: list[WebhookAttempt] = []
    results: list[tuple[int, SendResult]] = []
    try:
        if len(plan.claimed) == 1:
            # One send needs no thread to wait on.
            [notification] = plan.claimed
            results.append((notification.pk, _record(notification, plan.claim_id, *_send(notification), attempts)))
        else:
            _deliver_in_parallel(plan, results, attempts)
    finally:
        bulk.insert(attempts, timezone.now())
    return results


# A send that would start this close to the end of its claim's lease is
# not started: the transport's own timeouts (a webhook's 15 s, SMTP's) must
# end inside the lease, or the sweep could hand the row to a second sender
# while the first is still sending.
LEASE_MARGIN = timedelta(seconds=30)


def _send_within_lease(notification: Notification) -> tuple[datetime, Sent | TransportError] | None:
    """``_send``, unless the claim's lease is too near its end by the time
    a sending thread is free (a worker whose tasks share the threads, or
    a pool without time limits); None then, and nothing sent."""
    if notification.lease_until is not None and timezone.now() > notification.lease_until - LEASE_MARGIN:
        return None
    return _send(notification)


def _deliver_in_parallel(plan: Plan, results: list, attempts: list[WebhookAttempt]) -> None:
    pool = _sender_pool()
    pending = {pool.submit(_send_within_lease, notification): notification for notification in plan.claimed}
    recording = []
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            returned = [(pending.pop(future), future.result()) for future in done]
            late = [notification for notification, outcome in returned if outcome is None]
            if late:
                _release(late, plan.claim_id)
                results.extend((n.pk, SendResult(SendOutcome.RETRY, retry_in=0.0)) for n in late)
            recording = [(notification, *outcome) for notification, outcome in returned if outcome is not None]
            results.extend(_record_all(recording, plan.claim_id, attempts))
            recording = []
    except BaseException:
        # Interrupted (the task's soft time limit, a shutdown): sends not
        # yet started are given back to the queue, so that none is both
        # sent here and sent again; those being recorded are recorded
        # again (the update only applies while the claim is ours), and
        # those in flight end within the transport's timeout and are
        # recorded as usual.
        _release([pending.pop(f) for f in list(pending) if f.cancel()], plan.claim_id)
        if recording:
            _record_all(recording, plan.claim_id, attempts)
        for future in as_completed(pending):
            if (outcome := future.result()) is None:
                _release([pending[future]], plan.claim_id)
            else:
                _record(pending[future], plan.claim_id, *outcome, attempts)
        raise


def _release(notifications: list[Notification], claim_id: uuid.UUID) -> None:
    """Give back claims that were never tried: queued again, due now, and
    the attempt not counted."""
    Notification.objects.filter(pk__in=[n.pk for n in notifications], state=State.SENDING, claim_id=claim_id).update(
        state=State.QUEUED, claim_id=None, lease_until=None, attempts=F("attempts") - 1
    )


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _sender_pool() -> ThreadPoolExecutor:
    """One pool of sending threads per process; a forked worker makes its
    own, since threads do not survive a fork."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(settings.NOTIFICATION_SEND_THREADS, "notify-send"))
        return _pool[1]


def _still_claimed(notification: Notification, claim_id: uuid.UUID):
    """The notification's row while this claim still holds it: every write
    after a send goes through here, so a sender whose lease was taken over
    writes nothing."""
    return Notification.objects.filter(pk=notification.pk, state=State.SENDING, claim_id=claim_id)


def _send(notification: Notification) -> tuple[datetime, Sent | TransportError]:
    """Hand the message to its transport; when it started, and what came
    back. Touches no database, so that it can run in any thread."""
    started = timezone.now()
    try:
        return started, get_transport(notification.channel).send(outgoing.message_for(notification))
    except TransportError as error:
        return started, error
    except Exception as error:
        # A bug or a library's surprise is retried like an outage and ends
        # as failed, rather than leaving the row to lease expiry forever.
        logger.exception("Sending notification %s raised.", notification.pk)
        return started, TransportError(f"{type(error).__name__}: {error}")


def _record(
    notification: Notification,
    claim_id: uuid.UUID,
    started: datetime,
    outcome: Sent | TransportError,
    attempts: list[WebhookAttempt],
) -> SendResult:
    """``_record_all`` for one send."""
    [(_, result)] = _record_all([(notification, started, outcome)], claim_id, attempts)
    return result


def _record_all(
    returned: list[tuple[Notification, datetime, Sent | TransportError]],
    claim_id: uuid.UUID,
    attempts: list[WebhookAttempt],
) -> list[tuple[int, SendResult]]:
    """Record what these sends did (each a notification, when its send
    started and what came back), while the claims are still this worker's.
    A webhook's attempt log goes into ``attempts``, for the caller to write
    after the window below."""
    results = [
        (notification.pk, _failed(notification, _still_claimed(notification, claim_id), outcome, started))
        for notification, started, outcome in returned
        if isinstance(outcome, TransportError)
    ]
    sent = [item for item in returned if not isinstance(item[2], TransportError)]
    if not sent:
        return results
    # ---- The one duplicate window ------------------------------------------
    # The provider has accepted the message; until the UPDATE below commits,
    # a crash (SIGKILL, power loss, the database going away) leaves the row
    # SENDING with no provider id, and when its lease runs out another
    # worker sends it again. Nothing runs between send() returning and that
    # UPDATE, so the window is one database round trip (in a batch, the
    # sending threads hand their results to this one, which records all
    # those that came back while it was recording the previous ones in one
    # statement). A crash inside send(), the request in flight, is the same
    # case: we cannot know whether the provider took it. Webhooks carry the
    # same webhook-id on the resend so brands can drop it; the attempt log
    # is written after the window.
    recorded = _mark_sent(
        [(notification, outcome.provider_message_id[:128]) for notification, _, outcome in sent], claim_id
    )
    # ---- End of the window -------------------------------------------------
    for notification, started, outcome in sent:
        if notification.pk not in recorded:
            logger.warning("Notification %s was sent but its claim had been taken over.", notification.pk)
        if notification.channel == Channel.WEBHOOK:
            attempts.append(
                _webhook_attempt(
                    notification, started, status_code=outcome.status_code, response=outcome.response, ok=True
                )
            )
        results.append((notification.pk, SendResult(SendOutcome.SENT)))
    return results


def _mark_sent(sent: list[tuple[Notification, str]], claim_id: uuid.UUID) -> set[int]:
    """Record sends (each a notification and the provider's message id)
    where the claim is still this worker's; the ids of those it was."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _mark_sent_sql(sent, claim_id, now)
    return _mark_sent_orm(sent, claim_id, now)


def _mark_sent_orm(sent: list[tuple[Notification, str]], claim_id: uuid.UUID, now: datetime) -> set[int]:
    """``_mark_sent`` through the ORM, one update per send: the written-out
    statement's twin."""
    return {
        notification.pk
        for notification, provider_message_id in sent
        if _still_claimed(notification, claim_id).update(
            state=State.SENT,
            provider_message_id=provider_message_id,
            sent_at=now,
            last_error="",
            claim_id=None,
            lease_until=None,
        )
    }


def _mark_sent_sql(sent: list[tuple[Notification, str]], claim_id: uuid.UUID, now: datetime) -> set[int]:
    """``_mark_sent`` in one written-out statement over arrays (PostgreSQL)."""
    ids, provider_ids = [n.pk for n, _ in sent], [provider_id for _, provider_id in sent]
    with connection.cursor() as cursor:
        cursor.execute(_mark_sent_statement(), [now, ids, provider_ids, claim_id])
        return {pk for (pk,) in cursor.fetchall()}


@functools.cache
def _mark_sent_statement() -> str:
    """Written out, once per message sent (bench/notify_latency.py): the
    ORM's update took longer to build than to run. Every name comes from
    the model, through shipments.bulk; the states are the enum's values."""
    pk, provider_id = Notification._meta.pk, Notification._meta.get_field("provider_message_id")

    def column(name: str) -> str:
        return bulk.column(Notification, name)

    return (
        f"UPDATE {bulk.quote(Notification._meta.db_table)} AS n"  # noqa: S608 - names from the model only
        f" SET {column('state')} = '{State.SENT.value}', {column('provider_message_id')} = v.provider_id,"
        f" {column('sent_at')} = %s, {column('last_error')} = '', {column('claim_id')} = NULL,"
        f" {column('lease_until')} = NULL"
        f" FROM unnest(%s::{pk.rel_db_type(connection)}[], %s::{provider_id.db_type(connection)}[])"
        " AS v(id, provider_id)"
        f" WHERE n.{bulk.quote(pk.column)} = v.id AND n.{column('state')} = '{State.SENDING.value}'"
        f" AND n.{column('claim_id')} = %s RETURNING n.{bulk.quote(pk.column)}"
    )


def _still_wanted(
    notification: Notification, now, *, active: set[int] | None = None, opted_out: set[str] | None = None
) -> str | None:
    """Why a claimed notification is no longer to be sent, or None. The
    active subscriptions and opted-out phones are read here unless given
    (``deliver_together`` reads them for many at once)."""
    if notification.channel == Channel.WEBHOOK:
        return None
    if notification.subscription_id is not None:
        if active is None:
            active = set(
                Subscription.objects.filter(pk=notification.subscription_id, active=True).values_list("pk", flat=True)
            )
        if notification.subscription_id not in active:
            return "Unsubscribed."
    if notification.channel == Channel.SMS:
        if opted_out is None:
            opted_out = set(SmsOptOut.objects.filter(phone=notification.recipient).values_list("phone", flat=True))
        if notification.recipient in opted_out:
            return "Recipient replied STOP."
    return alert_messages.still_wanted(notification) if notification.notice_id else None


def _failed(notification: Notification, still_claimed, error: TransportError, started) -> SendResult:
    now = timezone.now()
    if notification.channel == Channel.WEBHOOK:
        _webhook_attempt(
            notification, started or now, status_code=error.status_code, response=error.response, ok=False, error=error
        ).save()
    policy = rules.WEBHOOK_RETRIES if notification.channel == Channel.WEBHOOK else rules.SMS_EMAIL_RETRIES
    # The row was read after the claim, so this attempt is already counted.
    attempts = notification.attempts
    window_start = notification.requeued_at or notification.created_at
    if error.permanent or policy.gives_up(attempts=attempts, first_planned_at=window_start, now=now):
        still_claimed.update(
            state=State.FAILED, last_error=error.message[:2000], failed_at=now, claim_id=None, lease_until=None
        )
        if notification.channel == Channel.SMS and error.response == str(TWILIO_OPTED_OUT):
            SmsOptOut.objects.get_or_create(phone=notification.recipient)
        logger.warning("Notification %s failed for good: %s", notification.pk, error.message)
        return SendResult(SendOutcome.FAILED)
    delay = policy.delay(attempts)
    still_claimed.update(
        state=State.QUEUED,
        last_error=error.message[:2000],
        next_attempt_at=now + timedelta(seconds=delay),
        claim_id=None,
        lease_until=None,
    )
    logger.info("Notification %s will be retried in %.0fs: %s", notification.pk, delay, error.message)
    return SendResult(SendOutcome.RETRY, retry_in=delay)


def _webhook_attempt(notification, started, *, status_code, response, ok, error=None) -> WebhookAttempt:
    return WebhookAttempt(
        notification=notification,
        attempted_at=started,
        url=outgoing.webhook_url(notification)[:500],
        status_code=status_code,
        response_body=(response or "")[:2000],
        error="" if ok else (error.message if error else "")[:2000],
        duration_ms=max(0, int((timezone.now() - started).total_seconds() * 1000)),
        succeeded=ok,
    )


def retry_failed(*, notification_ids) -> list[int]:
    """Put failed notifications back in the queue (the admin's "retry"),
    with a fresh count of attempts. Returns the ids requeued."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update()
            .filter(pk__in=list(notification_ids), state=State.FAILED)
            .values_list("pk", flat=True)
        )
        Notification.objects.filter(pk__in=ids).update(
            state=State.QUEUED, attempts=0, next_attempt_at=now, failed_at=None, requeued_at=now
        )
    return ids
