"""Planning: a StatusChange in the outbox becomes its Notification rows, once.

The rule it keeps: ``record_event`` leaves a StatusChange with
``processed_at`` NULL; planning turns it into one Notification per channel
and recipient (idempotently, through the unique (status change, channel,
recipient) constraint) and stamps it processed in the same transaction.
Rows due now may be inserted already claimed by the planner, for
notifications.sending to deliver at once. What planning misses, the sweep
(notifications.sweep) finds.

Only status changes are planned here. An ETA that moves past the promised
window is told by the late alert's message (notifications.alert_messages),
which stands in for an ``eta_changed`` message: whatever comes to message
customers about ETA moves must leave that move to it, or they hear twice.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from shipments import bulk
from shipments.models import Brand, Shipment, StatusChange, TrackingEvent
from shipments.recipients import recipient_zone

from . import content, rules
from .models import BrandNotificationSettings, Channel, Notification, SmsOptOut, State, Subscription

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


def settings_for(brand) -> BrandNotificationSettings:
    """The brand's settings, or the defaults. Reads the row that
    ``select_related("…brand__notification_settings")`` brought along."""
    try:
        return brand.notification_settings
    except BrandNotificationSettings.DoesNotExist:
        return BrandNotificationSettings(brand=brand)


def customer_subscriptions(shipment: Shipment, channel: str, notify_recipient: bool) -> list[Subscription]:
    """Who hears of a shipment on a customer channel: its own phone or
    email (given a subscription row the first time) unless the brand
    turned that off, and whoever opted in, less those who unsubscribed or
    replied STOP. Every message to customers goes to this set."""
    return Subscribers([(shipment, channel, notify_recipient)]).of(shipment, channel, notify_recipient)


def _own_address(shipment: Shipment, channel: str) -> str:
    return shipment.recipient_phone if channel == Channel.SMS else shipment.recipient_email.lower()


class Subscribers:
    """customer_subscriptions for many (shipment, channel, notify_recipient)
    at once, as a batch of changes is planned: three queries for the batch
    (the recipients' own rows made where missing, the active rows, the SMS
    opt-outs) rather than five for each of its messages."""

    def __init__(self, wanted: list[tuple[Shipment, str, bool]]) -> None:
        own = {
            (shipment.pk, channel, _own_address(shipment, channel))
            for shipment, channel, notify_recipient in wanted
            if notify_recipient and _own_address(shipment, channel)
        }
        if own:
            # A row that exists (an unsubscribed one too) stays as it is.
            Subscription.objects.bulk_create(
                [
                    Subscription(shipment_id=pk, channel=channel, address=address, source=Subscription.Source.RECIPIENT)
                    for pk, channel, address in sorted(own)
                ],
                ignore_conflicts=True,
            )
        shipment_ids = {shipment.pk for shipment, _channel, _notify in wanted}
        channels = {channel for _shipment, channel, _notify in wanted}
        self.rows: dict[tuple[int, str], list[Subscription]] = {}
        self.opted_out: set[str] = set()
        if not shipment_ids:
            return
        for row in Subscription.objects.filter(shipment_id__in=shipment_ids, channel__in=channels, active=True):
            self.rows.setdefault((row.shipment_id, row.channel), []).append(row)
        phones = [row.address for (_pk, channel), rows in self.rows.items() if channel == Channel.SMS for row in rows]
        if phones:
            self.opted_out = set(SmsOptOut.objects.filter(phone__in=phones).values_list("phone", flat=True))

    def of(self, shipment: Shipment, channel: str, notify_recipient: bool) -> list[Subscription]:
        subscriptions = self.rows.get((shipment.pk, channel), [])
        if channel == Channel.SMS:
            subscriptions = [s for s in subscriptions if s.address not in self.opted_out]
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
    # Due now but left queued for a task behind this one (``later``).
    later: list[int] = field(default_factory=list)


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


def plan_batch(
    status_change_ids: list[int], *, claim: bool = True, up_to: int = 0, later: tuple[str, ...] = ()
) -> Plan:
    """Plan a batch of status changes in one transaction. With ``claim``,
    every notification due now is inserted already claimed by the caller:
    one commit, no queue hop and no second claim on the way to the
    transport. If the caller dies, those leases run out and the sweep hands
    the rows to another worker. Those on a channel in ``later`` are inserted
    queued instead, and listed in the plan's ``later`` for the caller to
    hand to a task of its own.

    A change another planner holds locked is skipped (that planner does it),
    as is one already planned. With ``up_to``, the batch is filled up to that
    many with other changes waiting in the outbox: when the workers fall
    behind, one task plans what many tasks were queued for, and those tasks
    find their work done.
    """
    now = timezone.now()
    claim_id = uuid.uuid4() if claim else None
    claimed: list[Notification] = []
    left: list[int] = []
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
            claimed, left, could_claim = _insert(rows, now, claim_id, later)
            for change in changes:
                change.processed_at = now
            bulk.update(changes, ["processed_at"])
    if claim and could_claim:
        # The rest were planned by someone else, who claimed what was due
        # (or will: a lock skipped is a planner at work), or were planned
        # before and their rows are queued for the sweep.
        return Plan(due=[], claimed=claimed, claim_id=claim_id if claimed else None, later=left)
    # What this call did not plan itself (or could not claim) may have queued
    # rows that are due.
    due = Notification.objects.filter(
        status_change_id__in=list(status_change_ids), state=State.QUEUED, next_attempt_at__lte=now
    ).exclude(pk__in=left)
    due_ids = list(due.order_by(CHANNEL_ORDER, "pk").values_list("pk", flat=True))
    return Plan(due=due_ids, claimed=claimed, claim_id=claim_id if claimed else None, later=left)


def _lock_unplanned(status_change_ids: list[int], others: int = 0) -> list[StatusChange]:
    """Lock and read the unplanned status changes among these ids, with
    their event, shipment, brand and brand settings; with ``others``, up to
    that many other unplanned changes instead, oldest first. Rows another
    transaction holds are skipped."""
    if connection.vendor == "postgresql":
        return _lock_unplanned_sql(status_change_ids, others)
    return _lock_unplanned_orm(status_change_ids, others)


def _lock_unplanned_orm(status_change_ids: list[int], others: int = 0) -> list[StatusChange]:
    """``_lock_unplanned`` through the ORM: the written-out statement's twin."""
    unplanned = (
        StatusChange.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("shipment__brand__notification_settings", "event")
        .filter(processed_at__isnull=True)
        .order_by("pk")
    )
    if others:
        return list(unplanned.exclude(pk__in=status_change_ids)[:others])
    return list(unplanned.filter(pk__in=status_change_ids))


# The models _lock_unplanned reads, in the order of the statement's columns,
# each with its alias there.
_PLANNING_MODELS = (StatusChange, TrackingEvent, Shipment, Brand, BrandNotificationSettings)
_ALIASES = dict(zip(_PLANNING_MODELS, ("c", "e", "s", "b", "ns"), strict=True))


def _on(model, name: str | None = None) -> str:
    """The column of the model's field ``name`` (its primary key without
    one), qualified by the model's alias in the planning statement."""
    return f"{_ALIASES[model]}.{bulk.column(model, name or model._meta.pk.name)}"


@functools.cache
def _planning_sql(others: bool) -> str:
    """Written out rather than built by the ORM per call, on the path of
    every status change (bench/notify_latency.py): compiling this five-table
    select_related took longer than running it. Every name comes from the
    models, through shipments.bulk."""
    columns = ", ".join(
        f"{alias}.{bulk.quote(f.column)}" for model, alias in _ALIASES.items() for f in model._meta.concrete_fields
    )
    tables = {model: f"{bulk.quote(model._meta.db_table)} {alias}" for model, alias in _ALIASES.items()}
    change_id = _on(StatusChange)
    wanted = (
        f"NOT ({change_id} = ANY(%s)) ORDER BY {change_id} LIMIT %s"
        if others
        else f"{change_id} = ANY(%s) ORDER BY {change_id}"
    )
    return (
        f"SELECT {columns} FROM {tables[StatusChange]}"  # noqa: S608 - names from the models only
        f" JOIN {tables[TrackingEvent]} ON {_on(TrackingEvent)} = {_on(StatusChange, 'event')}"
        f" JOIN {tables[Shipment]} ON {_on(Shipment)} = {_on(StatusChange, 'shipment')}"
        f" JOIN {tables[Brand]} ON {_on(Brand)} = {_on(Shipment, 'brand')}"
        f" LEFT JOIN {tables[BrandNotificationSettings]} ON {_on(BrandNotificationSettings, 'brand')} = {_on(Brand)}"
        f" WHERE {_on(StatusChange, 'processed_at')} IS NULL AND {wanted}"
        f" FOR UPDATE OF {_ALIASES[StatusChange]} SKIP LOCKED"
    )


def _lock_unplanned_sql(status_change_ids: list[int], others: int = 0) -> list[StatusChange]:
    """``_lock_unplanned`` in one written-out statement (PostgreSQL)."""
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
            subscribers = Subscribers([wanted for change in changes for wanted in _customer_channels(change, now)])
            return changes, [row for change in changes for row in _rows_for(change, now, subscribers)]
    except Exception:
        logger.warning("Planning a batch of %d status changes failed; planning them one by one.", len(changes))
    planned, rows = [], []
    for change in changes:
        try:
            with transaction.atomic():
                rows += _rows_for(change, now, Subscribers(_customer_channels(change, now)))
        except Exception:
            logger.exception("Planning status change %s failed; it stays in the outbox.", change.pk)
            continue
        planned.append(change)
    return planned, rows


def _channels_of(change: StatusChange) -> list[str]:
    """The customer channels the brand tells of this change's status on."""
    brand_settings = settings_for(change.shipment.brand)
    return [c for c in (Channel.SMS, Channel.EMAIL) if change.new_status in brand_settings.statuses_for(c)]


def _customer_channels(change: StatusChange, now) -> list[tuple[Shipment, str, bool]]:
    """What Subscribers needs to know of a change: the shipment on each
    customer channel its message goes out on (none for a stale change)."""
    if now - change.created_at > STALE_AFTER:
        return []
    notify_recipient = settings_for(change.shipment.brand).notify_recipient
    return [(change.shipment, channel, notify_recipient) for channel in _channels_of(change)]


def _rows_for(change: StatusChange, now, subscribers: Subscribers) -> list[Notification]:
    """The change's notifications, unsaved, sorted SMS, email, webhook."""
    shipment = change.shipment
    brand = shipment.brand
    brand_settings = settings_for(brand)
    status = change.new_status
    language = content.language_for(shipment)
    stale = now - change.created_at > STALE_AFTER
    rows: list[Notification] = []

    customer_channels = _channels_of(change)
    if customer_channels and not stale:
        texts = content.texts_for(shipment, status, language)
        sms_not_before = rules.earliest_sms_time(now, tz_name=recipient_zone(shipment).key, status=status)
        for channel in customer_channels:
            not_before = sms_not_before if channel == Channel.SMS else now
            rows += customer_rows(
                shipment, channel, texts, not_before=not_before, brand_settings=brand_settings, subscribers=subscribers
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


def customer_rows(
    shipment: Shipment,
    channel: str,
    texts: content.Texts,
    *,
    not_before,
    brand_settings: BrandNotificationSettings,
    subscribers: Subscribers | None = None,
) -> list[Notification]:
    """A message on a customer channel, unsaved, once for each of its
    ``customer_subscriptions``: the SMS text (made GSM-7 where it can be) or
    the email's subject and text, not to be sent before ``not_before``."""
    if channel == Channel.SMS:
        sms = rules.prepare_sms(texts.sms)
        message = {"body": sms.text, "segments": sms.segments}
    else:
        message = {"subject": texts.subject, "body": texts.email}
    return [
        Notification(
            channel=channel,
            recipient=subscription.address,
            subscription=subscription,
            next_attempt_at=not_before,
            **message,
        )
        for subscription in (
            subscribers.of(shipment, channel, brand_settings.notify_recipient)
            if subscribers is not None
            else customer_subscriptions(shipment, channel, brand_settings.notify_recipient)
        )
    ]


# What makes a notification the same notification.
NOTIFICATION_IDENTITY = ("status_change", "channel", "recipient")


def _insert(
    rows: list[Notification], now, claim_id: uuid.UUID | None, later: tuple[str, ...] = ()
) -> tuple[list[Notification], list[int], bool]:
    """Insert the rows; with ``claim_id``, those due now are inserted
    claimed, but for those on a channel in ``later``. Returns the claimed
    rows, the ids of the due rows left for later, and whether every row was
    new.

    Unprocessed and locked, the changes have no rows yet, unless someone
    reset a change's processed_at by hand: its rows already stored are left
    out (and left to whoever has them), the others inserted and claimed."""
    due_now = [row for row in rows if row.next_attempt_at <= now] if claim_id else []
    left = [row for row in due_now if row.channel in later]
    due_now = [row for row in due_now if row.channel not in later]
    for row in due_now:
        row.state, row.claim_id, row.attempts = State.SENDING, claim_id, 1
        row.lease_until = now + timedelta(seconds=lease_seconds())
    bulk.insert(rows, now, unless_present=NOTIFICATION_IDENTITY)
    return (
        [row for row in due_now if row.pk is not None],
        [row.pk for row in left if row.pk is not None],
        all(row.pk is not None for row in rows),
    )
