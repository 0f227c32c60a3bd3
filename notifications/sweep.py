"""The sweep: whatever a lost task, a dead worker or a Redis outage left
behind in the outbox.

The rule it keeps: the normal path (planning after commit, sending what
planning claimed) may lose work, and the sweep finds all of it: status
changes still unplanned a while after they were made, notifications due
but still queued a while after, and those whose sender's lease ran out. It
changes nothing; the caller (tasks.sweep_task) enqueues the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from shipments.models import StatusChange

from .models import Notification, State


def sweep_grace() -> timedelta:
    """How long a due notification may sit queued before the sweep decides
    its task was lost and enqueues another."""
    return timedelta(seconds=settings.NOTIFICATION_SWEEP_GRACE_SECONDS)


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
