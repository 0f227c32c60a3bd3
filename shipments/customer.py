"""What a customer can do from the tracking page. Nothing here touches the
status; everything moves the shipment's version on, because the page shows
it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import alerts, signals
from .alert_models import ActivityAction, AlertActivity
from .alert_rules import AlertKind
from .edits import save_and_announce
from .models import Alert, AlertState, DeliveryRating, Notice, NoticeKind, Shipment
from .statuses import INSTRUCTIONS_OPEN, Status

# The problems a customer can report, as a customer_report alert's
# detail["problem"] says them.
NOT_RECEIVED = "not_received"
DAMAGED = "damaged"
SOMETHING_ELSE = "other"
PROBLEMS = (NOT_RECEIVED, DAMAGED, SOMETHING_ELSE)
REPORT_TEXT_MAX_LENGTH = 500


class ActionRefused(ValueError):
    """The action no longer fits the parcel's state; the message says why."""


def leave_delivery_instructions(*, shipment_id: int, instructions: str) -> Shipment:
    """Set (or clear) the instructions for the driver, only while the parcel
    is not yet on the van: after that the driver may never see them.

    A change of text writes a Notice in the same transaction, so that the
    brand hears of it (its webhook) even if the announcement after commit
    is lost; the same text sent again is not news and writes none.
    """
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        if shipment.status_enum not in INSTRUCTIONS_OPEN:
            raise ActionRefused("too_late")
        text = instructions.strip()
        changed = text != shipment.delivery_instructions
        shipment.delivery_instructions = text
        shipment.delivery_instructions_at = timezone.now()
        save_and_announce(shipment, ["delivery_instructions", "delivery_instructions_at"])
        if changed:
            notice = Notice.objects.create(
                shipment=shipment,
                kind=NoticeKind.INSTRUCTIONS_UPDATED,
                data={
                    "text": text,
                    "updated_at": shipment.delivery_instructions_at.isoformat(),
                    "tracking_number": shipment.tracking_number,
                },
            )
            signals.announce_notices_on_commit(Shipment, [notice.pk])
    return shipment


def rate_delivery(*, shipment_id: int, score: int, comment: str = "") -> DeliveryRating:
    """Rate a delivered parcel, once."""
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        if shipment.status_enum != Status.DELIVERED:
            raise ActionRefused("not_delivered")
        try:
            with transaction.atomic():
                rating = DeliveryRating.objects.create(shipment=shipment, score=score, comment=comment.strip())
        except IntegrityError:
            raise ActionRefused("already_rated") from None
        save_and_announce(shipment)
    return rating


def problems_for(status: Status) -> tuple[str, ...]:
    """What can be reported of a parcel in this status: "not received" only
    once it is said to be delivered."""
    return PROBLEMS if status == Status.DELIVERED else tuple(p for p in PROBLEMS if p != NOT_RECEIVED)


class Reported(StrEnum):
    OPENED = "opened"  # a new customer_report alert
    ADDED = "added"  # a trail line on the open one, which held only an address note
    ALREADY = "already"  # a report was open already: nothing changed


@dataclass(frozen=True)
class ReportOutcome:
    alert: Alert
    result: Reported


def open_report_entries(shipment_id: int) -> list[tuple[datetime, str]]:
    """What the customer has sent that support holds now: (when, problem)
    of the open customer_report alert's opening and of each trail line
    that carries a problem (a report, or an address note: shipments.choices),
    oldest first; [] when none is open. One query."""
    rows = (
        AlertActivity.objects.filter(
            alert__shipment_id=shipment_id,
            alert__kind=AlertKind.CUSTOMER_REPORT,
            alert__state=AlertState.OPEN,
            action__in=[ActivityAction.OPENED, ActivityAction.NOTE],
        )
        .order_by("at", "pk")
        .values_list("at", "action", "data", "alert__detail")
    )
    entries = []
    for at, action, data, detail in rows:
        problem = (detail if action == ActivityAction.OPENED else data or {}).get("problem", "")
        if problem:
            entries.append((at, problem))
    return entries


def has_open_report(shipment_id: int, entries: list[tuple[datetime, str]] | None = None) -> bool:
    """Whether the customer's report of a problem is with support: an open
    customer_report alert that carries one. An address note alone is not a
    report; the page still offers the report form beside it. ``entries``:
    open_report_entries, when the caller has read them."""
    if entries is None:
        entries = open_report_entries(shipment_id)
    return any(problem in PROBLEMS for _at, problem in entries)


def report_problem(*, shipment_id: int, problem: str, text: str = "") -> ReportOutcome:
    """Pass the customer's problem to the brand's support: a customer_report
    alert with detail {"problem", "text"}, the text kept as given (whoever
    shows it escapes it). Staff resolve it.

    One open customer_report per shipment (alerts' rule). While one is open
    that carries only an address note, the report goes on it as a trail
    line of its own (data {"problem"}, the text) and the page moves on:
    ADDED. While one is open that carries a report, another adds nothing:
    ALREADY."""
    if problem not in PROBLEMS:
        raise ValueError(f"Unknown problem: {problem!r}")
    if len(text) > REPORT_TEXT_MAX_LENGTH:
        raise ValueError(f"A report's text is at most {REPORT_TEXT_MAX_LENGTH} characters.")
    with transaction.atomic():
        # Locked, so that the status checked is the one the report is about.
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        if problem not in problems_for(shipment.status_enum):
            raise ActionRefused("not_delivered_yet")
        now = timezone.now()
        detail = {"problem": problem, "text": text}
        opened = alerts.open_alert(shipment=shipment, kind=AlertKind.CUSTOMER_REPORT, now=now, detail=detail)
        if opened is not None:
            return ReportOutcome(opened, Reported.OPENED)
        open_report = Alert.objects.get(shipment=shipment, kind=AlertKind.CUSTOMER_REPORT, state=AlertState.OPEN)
        if has_open_report(shipment.pk):
            return ReportOutcome(open_report, Reported.ALREADY)
        alerts.add_from_customer(
            alert=open_report, tracking_number=shipment.tracking_number, problem=problem, text=text, now=now
        )
        open_report.updated_at = now
        open_report.save(update_fields=["updated_at"])
        save_and_announce(shipment)
    return ReportOutcome(open_report, Reported.ADDED)
