"""Planning and sending notifications, delivery receipts and the sweep
(preferences live in notifications/preferences.py).

The outbox contract: ``record_event`` leaves a StatusChange with
``processed_at`` NULL; ``plan_notifications`` turns it into Notification rows
(one per channel and recipient, idempotently) and stamps it processed in the
same transaction; ``send_notification`` claims one row at a time with a
conditional update and a lease. ``sweep`` finds whatever a lost task, a dead
worker or a Redis outage left behind.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from shipments import bulk
from shipments.models import Brand, LocationPing, Shipment, StatusChange, TrackingEvent

from . import content, rules
from .models import (
    BrandNotificationSettings,
    Channel,
    Notification,
    SmsOptOut,
    State,
    Subscription,
    WebhookAttempt,
)
from .transports import OutgoingMessage, Sent, TransportError, get_transport

logger = logging.getLogger(__name__)

# A status change this old is no longer news to a person; its SMS and
# email are not sent (the brand's webhook still is).
STALE_AFTER = timedelta(hours=getattr(settings, "NOTIFICATION_STALE_HOURS", 24))


def lease_seconds() -> int:
    """How long a claim lasts. It is longer than the task's hard time limit,
    so that when a lease runs out the worker that held it has certainly
    stopped (finished, killed by the limit, or dead), and two senders of one
    notification never overlap."""
    return settings.NOTIFICATION_LEASE_SECONDS


def sweep_grace() -> timedelta:
    """How long a due notification may sit queued before the sweep decides
    its task was lost and enqueues another."""
    return timedelta(seconds=settings.NOTIFICATION_SWEEP_GRACE_SECONDS)


# --- planning --------------------------------------------------------------


def settings_for(brand) -> BrandNotificationSettings:
    """The brand's settings, or the defaults. Reads the row that
    ``select_related("…brand__notification_settings")`` brought along."""
    try:
        return brand.notification_settings
    except BrandNotificationSettings.DoesNotExist:
        return BrandNotificationSettings(brand=brand)


def _customer_subscriptions(shipment: Shipment, channel: str, notify_recipient: bool) -> list[Subscription]:
    own = shipment.recipient_phone if channel == Channel.SMS else shipment.recipient_email.lower()
    if notify_recipient and own:
        Subscription.objects.get_or_create(
            shipment=shipment, channel=channel, address=own, defaults={"source": Subscription.Source.RECIPIENT}
        )
    subscriptions = list(Subscription.objects.filter(shipment=shipment, channel=channel, active=True))
    if channel == Channel.SMS:
        opted_out = set(
            SmsOptOut.objects.filter(phone__in=[s.address for s in subscriptions]).values_list("phone", flat=True)
        )
        subscriptions = [s for s in subscriptions if s.address not in opted_out]
    if not notify_recipient:
        subscriptions = [s for s in subscriptions if s.source != Subscription.Source.RECIPIENT]
    return subscriptions


@dataclass
class Plan:
    """What planning left to do. ``claimed`` are inserted already SENDING
    under ``claim_id``, for the caller to deliver now; ``due`` are queued and
    due, for the caller to enqueue (a redelivered task, or a plan that could
    not claim)."""

    due: list[int]
    claimed: list[Notification] = field(default_factory=list)
    claim_id: uuid.UUID | None = None


# A planner whose own changes waited longer than this in the queue is behind,
# and fills its batch from the outbox.
BEHIND = timedelta(milliseconds=200)


def plan_notifications(*, status_change_id: int) -> list[int]:
    """Turn one StatusChange into its Notification rows, once.

    Idempotent: a second call (a redelivered task, the sweep racing the
    task) inserts nothing new, because of the unique constraint on (status
    change, channel, recipient). Returns the ids of the change's queued
    notifications that are due now, for the caller to enqueue.
    """
    return plan_batch([status_change_id], claim=False).due


def plan_batch(status_change_ids: list[int], *, claim: bool = True, up_to: int = 0) -> Plan:
    """Plan a batch of status changes in one transaction. With ``claim``,
    every notification due now is inserted already claimed by the caller:
    one commit, no queue hop and no second claim on the way to the
    transport. If the caller dies, those leases run out and the sweep hands
    the rows to another worker.

    A change another planner holds locked is skipped (that planner does it),
    as is one already planned. With ``up_to``, the batch is filled up to that
    many with other changes waiting in the outbox: when the workers fall
    behind, one task plans what many tasks were queued for, and those tasks
    find their work done.
    """
    now = timezone.now()
    claim_id = uuid.uuid4() if claim else None
    claimed: list[Notification] = []
    could_claim = claim
    with transaction.atomic():
        # Lock the status changes only: FOR UPDATE over the joins would also
        # lock the shipment (stalling record_event) and the brand (making
        # every planner of one brand wait for the others).
        changes = _lock_unplanned(status_change_ids)
        if len(changes) < up_to and any(now - change.created_at > BEHIND for change in changes):
            changes += _lock_unplanned(status_change_ids, others=up_to - len(changes))
        changes, rows = _rows_for_each(changes, now)
        if changes:
            claimed, could_claim = _insert(rows, now, claim_id)
            for change in changes:
                change.processed_at = now
            bulk.update(changes, ["processed_at"])
    if claim and could_claim:
        # The rest were planned by someone else, who claimed what was due
        # (or will: a lock skipped is a planner at work), or were planned
        # before and their rows are queued for the sweep.
        return Plan(due=[], claimed=claimed, claim_id=claim_id if claimed else None)
    # What this call did not plan itself (or could not claim) may have queued
    # rows that are due.
    due = Notification.objects.filter(
        status_change_id__in=list(status_change_ids), state=State.QUEUED, next_attempt_at__lte=now
    )
    due_ids = list(due.order_by(CHANNEL_ORDER, "pk").values_list("pk", flat=True))
    return Plan(due=due_ids, claimed=claimed, claim_id=claim_id if claimed else None)


def _lock_unplanned(status_change_ids: list[int], others: int = 0) -> list[StatusChange]:
    """Lock and read the unplanned status changes among these ids, with
    their event, shipment, brand and brand settings; with ``others``, up to
    that many other unplanned changes instead, oldest first. Rows another
    transaction holds are skipped."""
    if connection.vendor == "postgresql":
        return _lock_unplanned_sql(status_change_ids, others)
    unplanned = (
        StatusChange.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("shipment__brand__notification_settings", "event")
        .filter(processed_at__isnull=True)
        .order_by("pk")
    )
    if others:
        return list(unplanned.exclude(pk__in=status_change_ids)[:others])
    return list(unplanned.filter(pk__in=status_change_ids))


# The models _lock_unplanned reads, in the order of the statement's columns.
_PLANNING_MODELS = (StatusChange, TrackingEvent, Shipment, Brand, BrandNotificationSettings)


@functools.cache
def _planning_sql(others: bool) -> str:
    """Written out rather than built by the ORM per call: compiling this
    five-table select_related took longer than running it, on the path of
    every status change."""
    quote = connection.ops.quote_name
    aliases = ("c", "e", "s", "b", "ns")
    columns = ", ".join(
        f"{alias}.{quote(f.column)}"
        for alias, model in zip(aliases, _PLANNING_MODELS, strict=True)
        for f in model._meta.concrete_fields
    )
    tables = {model: quote(model._meta.db_table) for model in _PLANNING_MODELS}
    wanted = "NOT (c.id = ANY(%s)) ORDER BY c.id LIMIT %s" if others else "c.id = ANY(%s) ORDER BY c.id"
    return (
        f"SELECT {columns} FROM {tables[StatusChange]} c"  # noqa: S608 - names from the models only
        f" JOIN {tables[TrackingEvent]} e ON e.id = c.event_id"
        f" JOIN {tables[Shipment]} s ON s.id = c.shipment_id"
        f" JOIN {tables[Brand]} b ON b.id = s.brand_id"
        f" LEFT JOIN {tables[BrandNotificationSettings]} ns ON ns.brand_id = b.id"
        f" WHERE c.processed_at IS NULL AND {wanted} FOR UPDATE OF c SKIP LOCKED"
    )


def _lock_unplanned_sql(status_change_ids: list[int], others: int) -> list[StatusChange]:
    params = [list(status_change_ids), others] if others else [list(status_change_ids)]
    with connection.cursor() as cursor:
        cursor.execute(_planning_sql(bool(others)), params)
        rows = cursor.fetchall()
    changes = []
    for row in rows:
        objects, start = [], 0
        for model in _PLANNING_MODELS:
            objects.extend(bulk.from_rows(model, None, [row], start))
            start += len(bulk.columns(model)[0])
        change, event, shipment, brand, brand_settings = objects
        if brand_settings.pk is None:  # the LEFT JOIN found no row: the defaults
            brand_settings = None
        change.event, change.shipment, shipment.brand = event, shipment, brand
        # Cached either way, so that settings_for() asks nothing more (a None
        # assigned through the descriptor is not cached).
        Brand.notification_settings.related.set_cached_value(brand, brand_settings)
        changes.append(change)
    return changes


# The order a change's notifications are handed out in: the recipient's
# phone first, the brand's systems last.
CHANNEL_RANK = {Channel.SMS: 0, Channel.EMAIL: 1, Channel.WEBHOOK: 2}
CHANNEL_ORDER = Case(*[When(channel=channel, then=Value(rank)) for channel, rank in CHANNEL_RANK.items()])


def _rows_for_each(changes: list[StatusChange], now) -> tuple[list[StatusChange], list[Notification]]:
    """The notifications of these changes, and the changes that could be
    planned. A change whose planning fails is left in the outbox (logged)
    rather than failing the others of its batch over and over."""
    try:
        with transaction.atomic():  # one savepoint for the whole batch
            return changes, [row for change in changes for row in _rows_for(change, now)]
    except Exception:
        logger.warning("Planning a batch of %d status changes failed; planning them one by one.", len(changes))
    planned, rows = [], []
    for change in changes:
        try:
            with transaction.atomic():
                rows += _rows_for(change, now)
        except Exception:
            logger.exception("Planning status change %s failed; it stays in the outbox.", change.pk)
            continue
        planned.append(change)
    return planned, rows


def _rows_for(change: StatusChange, now) -> list[Notification]:
    """The change's notifications, unsaved, sorted SMS, email, webhook."""
    shipment = change.shipment
    brand = shipment.brand
    brand_settings = settings_for(brand)
    status = change.new_status
    language = content.language_for(shipment)
    stale = now - change.created_at > STALE_AFTER
    rows: list[Notification] = []

    customer_channels = [c for c in (Channel.SMS, Channel.EMAIL) if status in brand_settings.statuses_for(c)]
    if customer_channels and not stale:
        texts = content.texts_for(shipment, status, language)
        sms = rules.prepare_sms(texts.sms)
        sms_not_before = rules.earliest_sms_time(
            now, tz_name=shipment.recipient_timezone or brand.default_timezone, status=status
        )
        for channel in customer_channels:
            for subscription in _customer_subscriptions(shipment, channel, brand_settings.notify_recipient):
                message = (
                    {"body": sms.text, "segments": sms.segments, "next_attempt_at": sms_not_before}
                    if channel == Channel.SMS
                    else {"subject": texts.subject, "body": texts.email, "next_attempt_at": now}
                )
                rows.append(
                    Notification(channel=channel, recipient=subscription.address, subscription=subscription, **message)
                )
    elif customer_channels:
        logger.info("Status change %s is older than %s: no SMS or email for it.", change.pk, STALE_AFTER)

    if brand.webhook_url and status in brand_settings.webhook_statuses:
        body = content.webhook_body(change)
        rows.append(Notification(channel=Channel.WEBHOOK, recipient=brand.webhook_url, body=body, next_attempt_at=now))
    for row in rows:
        row.status_change, row.shipment, row.language = change, shipment, language
    rows.sort(key=lambda row: CHANNEL_RANK[row.channel])
    return rows


# What makes a notification the same notification.
NOTIFICATION_IDENTITY = ("status_change", "channel", "recipient")


def _insert(rows: list[Notification], now, claim_id: uuid.UUID | None) -> tuple[list[Notification], bool]:
    """Insert the rows; with ``claim_id``, those due now are inserted
    claimed. Returns the claimed rows, and whether every row was new.

    Unprocessed and locked, the changes have no rows yet, unless someone
    reset a change's processed_at by hand: its rows already stored are left
    out (and left to whoever has them), the others inserted and claimed."""
    due_now = [row for row in rows if row.next_attempt_at <= now] if claim_id else []
    for row in due_now:
        row.state, row.claim_id, row.attempts = State.SENDING, claim_id, 1
        row.lease_until = now + timedelta(seconds=lease_seconds())
    bulk.insert(rows, now, unless_present=NOTIFICATION_IDENTITY)
    return [row for row in due_now if row.pk is not None], all(row.pk is not None for row in rows)


# --- sending ---------------------------------------------------------------


class Outcome(enum.StrEnum):
    SENT = "sent"
    NOT_CLAIMED = "not_claimed"  # someone else holds it, or it is done
    HELD = "held"  # quiet hours: goes out later
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
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
        return SendResult(Outcome.NOT_CLAIMED)
    notification = Notification.objects.select_related("shipment__brand", "status_change").get(pk=notification_id)
    return deliver_claimed(notification, claim_id=claim_id, now=now)


def deliver_claimed(notification: Notification, *, claim_id: uuid.UUID, now=None) -> SendResult:
    """Send a notification this worker has claimed, and record the result
    only while the claim is still its own."""
    now = now or timezone.now()
    mine = _mine(notification, claim_id)
    refusal = _still_wanted(notification, now)
    if refusal is not None:
        mine.update(state=State.SKIPPED, last_error=refusal, claim_id=None, lease_until=None)
        return SendResult(Outcome.SKIPPED)
    if notification.channel == Channel.SMS:
        shipment = notification.shipment
        not_before = rules.earliest_sms_time(
            now,
            tz_name=shipment.recipient_timezone or shipment.brand.default_timezone,
            status=notification.status_change.new_status,
        )
        if not_before > now:
            # A retry that drifted into the night waits for the morning; it
            # was not an attempt.
            mine.update(
                state=State.QUEUED,
                next_attempt_at=not_before,
                claim_id=None,
                lease_until=None,
                attempts=F("attempts") - 1,
            )
            return SendResult(Outcome.HELD, retry_in=(not_before - now).total_seconds())
    attempts: list[WebhookAttempt] = []
    result = _record(notification, claim_id, *_send(notification), attempts)
    bulk.insert(attempts, timezone.now())
    return result


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


def _deliver_in_parallel(plan: Plan, results: list, attempts: list[WebhookAttempt]) -> None:
    pending = {_sender_pool().submit(_send, notification): notification for notification in plan.claimed}
    recording = []
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            recording = [(pending.pop(future), *future.result()) for future in done]
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
            _record(pending[future], plan.claim_id, *future.result(), attempts)
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


def _mine(notification: Notification, claim_id: uuid.UUID):
    return Notification.objects.filter(pk=notification.pk, state=State.SENDING, claim_id=claim_id)


def _send(notification: Notification) -> tuple[datetime, Sent | TransportError]:
    """Hand the message to its transport; when it started, and what came
    back. Touches no database, so that it can run in any thread."""
    started = timezone.now()
    try:
        return started, get_transport(notification.channel).send(_outgoing(notification))
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
        (notification.pk, _failed(notification, _mine(notification, claim_id), outcome, started))
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
        results.append((notification.pk, SendResult(Outcome.SENT)))
    return results


def _mark_sent(sent: list[tuple[Notification, str]], claim_id: uuid.UUID) -> set[int]:
    """Record sends (each a notification and the provider's message id)
    where the claim is still this worker's; the ids of those it was."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        return {
            notification.pk
            for notification, provider_message_id in sent
            if _mine(notification, claim_id).update(
                state=State.SENT,
                provider_message_id=provider_message_id,
                sent_at=now,
                last_error="",
                claim_id=None,
                lease_until=None,
            )
        }
    ids, provider_ids = [n.pk for n, _ in sent], [provider_id for _, provider_id in sent]
    with connection.cursor() as cursor:
        cursor.execute(_mark_sent_sql(), [now, ids, provider_ids, claim_id])
        return {pk for (pk,) in cursor.fetchall()}


@functools.cache
def _mark_sent_sql() -> str:
    # Written out: the ORM's update took longer to build than to run, once
    # per message sent.
    quote = connection.ops.quote_name
    table = quote(Notification._meta.db_table)
    return (
        f"UPDATE {table} AS n SET state = '{State.SENT.value}', provider_message_id = v.provider_id,"  # noqa: S608 - no input
        " sent_at = %s, last_error = '', claim_id = NULL, lease_until = NULL"
        " FROM unnest(%s::bigint[], %s::varchar(128)[]) AS v(id, provider_id)"
        f" WHERE n.id = v.id AND n.state = '{State.SENDING.value}' AND n.claim_id = %s RETURNING n.id"
    )


def _still_wanted(notification: Notification, now) -> str | None:
    if notification.channel == Channel.WEBHOOK:
        return None
    if notification.subscription_id is not None:
        active = Subscription.objects.filter(pk=notification.subscription_id, active=True).exists()
        if not active:
            return "Unsubscribed."
    if notification.channel == Channel.SMS and SmsOptOut.objects.filter(phone=notification.recipient).exists():
        return "Recipient replied STOP."
    return None


def _outgoing(notification: Notification) -> OutgoingMessage:
    shipment = notification.shipment
    if notification.channel == Channel.EMAIL:
        unsubscribe = content.unsubscribe_url(notification.subscription_id) if notification.subscription_id else ""
        return OutgoingMessage(
            notification_id=notification.pk,
            channel=notification.channel,
            to=notification.recipient,
            subject=notification.subject,
            from_name=shipment.brand.name,
            reply_to=shipment.brand.support_email,
            body=content.email_text(
                shipment=shipment, text=notification.body, unsubscribe=unsubscribe, language=notification.language
            ),
            html=content.email_html(
                shipment=shipment,
                subject=notification.subject,
                text=notification.body,
                unsubscribe=unsubscribe,
                language=notification.language,
            ),
            headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
            if unsubscribe
            else {},
        )
    if notification.channel == Channel.WEBHOOK:
        if not _webhook_url(notification):
            raise TransportError("The brand no longer has a webhook URL.", permanent=True)
        return OutgoingMessage(
            notification_id=notification.pk,
            channel=notification.channel,
            to=_webhook_url(notification),
            body=notification.body,
            signing_secret=shipment.brand.webhook_secret,
            previous_signing_secret=shipment.brand.webhook_previous_secret,
        )
    return OutgoingMessage(
        notification_id=notification.pk, channel=notification.channel, to=notification.recipient, body=notification.body
    )


def _webhook_url(notification: Notification) -> str:
    """Where a webhook goes: the brand's URL as it is now, not the one it had
    when the notification was planned, so that a retry follows the brand
    to its new endpoint (and its current signing secret, read beside it)."""
    return notification.shipment.brand.webhook_url


def _failed(notification: Notification, mine, error: TransportError, started) -> SendResult:
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
        mine.update(state=State.FAILED, last_error=error.message[:2000], failed_at=now, claim_id=None, lease_until=None)
        if notification.channel == Channel.SMS and error.response == "21610":
            SmsOptOut.objects.get_or_create(phone=notification.recipient)
        logger.warning("Notification %s failed for good: %s", notification.pk, error.message)
        return SendResult(Outcome.FAILED)
    delay = policy.delay(attempts)
    mine.update(
        state=State.QUEUED,
        last_error=error.message[:2000],
        next_attempt_at=now + timedelta(seconds=delay),
        claim_id=None,
        lease_until=None,
    )
    logger.info("Notification %s will be retried in %.0fs: %s", notification.pk, delay, error.message)
    return SendResult(Outcome.RETRY, retry_in=delay)


def _webhook_attempt(notification, started, *, status_code, response, ok, error=None) -> WebhookAttempt:
    return WebhookAttempt(
        notification=notification,
        attempted_at=started,
        url=_webhook_url(notification)[:500],
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


# --- delivery receipts -----------------------------------------------------

TWILIO_DELIVERED = frozenset({"delivered", "read"})
TWILIO_FAILED = frozenset({"undelivered", "failed"})


def record_delivery_receipt(*, provider_message_id: str, status: str, error_code: str = "") -> bool:
    """Apply Twilio's status callback. Receipts can arrive out of order, so
    a row only moves forward: sent → delivered or failed, never back."""
    now = timezone.now()
    rows = Notification.objects.filter(provider_message_id=provider_message_id, channel=Channel.SMS)
    if status in TWILIO_DELIVERED:
        updated = rows.filter(state__in=[State.SENT, State.SENDING, State.FAILED]).update(
            state=State.DELIVERED, delivered_at=now
        )
    elif status in TWILIO_FAILED:
        updated = rows.filter(state__in=[State.SENT, State.SENDING]).update(
            state=State.FAILED, failed_at=now, last_error=f"Carrier reported {status} (error {error_code or 'none'})."
        )
        if error_code == "21610":
            for phone in rows.values_list("recipient", flat=True)[:1]:
                SmsOptOut.objects.get_or_create(phone=phone)
    else:
        return rows.exists()
    return bool(updated) or rows.exists()


# --- sweeps ----------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    """What the sweep found, each id with the moment that makes it due, so
    that one due moment is enqueued once (see tasks.sweep_task)."""

    unplanned_changes: list[tuple[int, float]]
    due_notifications: list[tuple[int, float]]

    @property
    def due_notification_ids(self) -> list[int]:
        return [pk for pk, _at in self.due_notifications]


def sweep(*, limit: int = 5000) -> SweepResult:
    """Find what the normal path missed: status changes not yet planned
    (their task was lost, or Redis was down at commit) and notifications
    due but still queued a while after, or whose worker died mid-send (its
    lease ran out). It changes nothing; the caller enqueues the work, so
    that after a long outage the workers catch up in parallel."""
    now = timezone.now()
    grace = sweep_grace()
    changes = list(
        StatusChange.objects.filter(processed_at__isnull=True, created_at__lte=now - grace)
        .order_by("created_at")
        .values_list("pk", "created_at")[:limit]
    )
    queued = Notification.objects.filter(state=State.QUEUED, next_attempt_at__lte=now - grace)
    abandoned = Notification.objects.filter(state=State.SENDING, lease_until__lt=now)
    due = [
        *queued.order_by("next_attempt_at").values_list("pk", "next_attempt_at")[:limit],
        *abandoned.order_by("lease_until").values_list("pk", "lease_until")[:limit],
    ]
    return SweepResult(
        unplanned_changes=[(pk, at.timestamp()) for pk, at in changes],
        due_notifications=[(pk, at.timestamp()) for pk, at in due],
    )


def purge_location_pings() -> int:
    """Delete raw GPS pings older than LOCATION_PING_RETENTION_DAYS."""
    cutoff = timezone.now() - timedelta(days=settings.LOCATION_PING_RETENTION_DAYS)
    deleted, _ = LocationPing.objects.filter(recorded_at__lt=cutoff).delete()
    return deleted
