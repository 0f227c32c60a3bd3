"""What a customer can do from the tracking page. Nothing here touches the
status; everything moves the shipment's version on, because the page shows
it."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import alerts, signals
from .alert_rules import AlertKind
from .edits import save_and_announce
from .models import Alert, DeliveryRating, Notice, NoticeKind, Shipment
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


def report_problem(*, shipment_id: int, problem: str, text: str = "") -> Alert | None:
    """Pass the customer's problem to the brand's support: a customer_report
    alert with detail {"problem", "text"}, the text kept as given (whoever
    shows it escapes it). One open report per shipment: while one is open,
    another adds nothing and None is returned. Staff resolve it."""
    if problem not in PROBLEMS:
        raise ValueError(f"Unknown problem: {problem!r}")
    if len(text) > REPORT_TEXT_MAX_LENGTH:
        raise ValueError(f"A report's text is at most {REPORT_TEXT_MAX_LENGTH} characters.")
    with transaction.atomic():
        # Locked, so that the status checked is the one the report is about.
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        if problem not in problems_for(shipment.status_enum):
            raise ActionRefused("not_delivered_yet")
        return alerts.open_alert(
            shipment=shipment,
            kind=AlertKind.CUSTOMER_REPORT,
            now=timezone.now(),
            detail={"problem": problem, "text": text},
        )
