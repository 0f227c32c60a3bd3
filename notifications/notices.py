"""Planning from the Notice outbox: a brand's webhook hears of changes other
than a status change (delivery instructions, alerts), and the customer of
the alerts meant for them and of staff's messages (alert_messages), once
each.

The contract is StatusChange's (see notifications/planning.py): the writer
leaves a Notice with ``processed_at`` NULL and announces it after commit;
``plan_notices`` turns it into at most one Notification per (notice,
channel, recipient) and stamps it processed in the same transaction;
sending goes through ``sending.deliver_together``, whose claim and lease
make a redelivered task or a dead worker harmless. ``unplanned`` is the
sweep's half: the notices whose announcement or task was lost.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from shipments import bulk
from shipments.models import Notice

from . import alert_messages, content, planning, sweep
from .models import NOTICE_WEBHOOK_TYPES, Channel, Notification, State

logger = logging.getLogger(__name__)

# What makes a notice's notification the same notification.
NOTICE_IDENTITY = ("notice", "channel", "recipient")


def plan_notices(*, notice_ids: list[int]) -> list[int]:
    """Turn these Notices into their Notification rows, once.

    Idempotent: a notice already stamped, or locked by another planner, is
    skipped, and the unique (notice, channel, recipient) constraint keeps a
    notice whose stamp was reset by hand from being planned twice. A notice
    with nobody to tell (no webhook URL or the kind left out, no customer
    message for it, no phone or email) is stamped all the same. Returns the ids of
    these notices' notifications that are queued and due now, for the
    caller to send.
    """
    now = timezone.now()
    ids = list(notice_ids)
    with transaction.atomic():
        # Lock the notices only: locking the joined shipment would stall the
        # customer's next change of it.
        notices = list(
            Notice.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("shipment__brand__notification_settings")
            .filter(pk__in=ids, processed_at__isnull=True)
            .order_by("pk")
        )
        planned, rows = [], []
        for notice in notices:
            try:
                with transaction.atomic():  # a savepoint: the others go on
                    rows += _rows_for(notice, now)
            except Exception:
                logger.exception("Planning notice %s failed; it stays in the outbox.", notice.pk)
                continue
            planned.append(notice)
        bulk.insert(rows, now, unless_present=NOTICE_IDENTITY)
        for notice in planned:
            notice.processed_at = now
        bulk.update(planned, ["processed_at"])
    due = Notification.objects.filter(notice_id__in=ids, state=State.QUEUED, next_attempt_at__lte=now)
    return list(due.order_by(planning.CHANNEL_ORDER, "pk").values_list("pk", flat=True))


def _rows_for(notice: Notice, now) -> list[Notification]:
    """The notice's notifications, unsaved, sorted SMS, email, webhook: the
    customer's (alert_messages.customer_rows), then the brand's webhook, if
    it has one, the kind is a webhook event and the brand wants it.
    A customer is not messaged about a change they made themselves (their
    delivery instructions)."""
    rows = alert_messages.customer_rows(notice, now)
    shipment = notice.shipment
    brand = shipment.brand
    wanted = notice.kind in NOTICE_WEBHOOK_TYPES and notice.kind in planning.settings_for(brand).webhook_notices
    if brand.webhook_url and wanted:
        rows.append(_webhook_row(notice, now))
    return rows


def _webhook_row(notice: Notice, now) -> Notification:
    shipment = notice.shipment
    return Notification(
        notice=notice,
        shipment=shipment,
        channel=Channel.WEBHOOK,
        recipient=shipment.brand.webhook_url,
        body=content.notice_webhook_body(notice),
        language=content.language_for(shipment),
        next_attempt_at=now,
    )


def unplanned(*, limit: int = 5000) -> list[tuple[int, float]]:
    """Notices not yet planned a while after they were written (their task
    was lost, or the broker was down at commit), oldest first, each with
    the moment that makes it due. Changes nothing."""
    cutoff = timezone.now() - sweep.sweep_grace()
    found = (
        Notice.objects.filter(processed_at__isnull=True, created_at__lte=cutoff)
        .order_by("created_at")
        .values_list("pk", "created_at")[:limit]
    )
    return [(pk, at.timestamp()) for pk, at in found]
