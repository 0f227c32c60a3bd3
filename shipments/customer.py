"""What a customer can change from the tracking page. Neither touches the
status; both move the shipment's version on, because the page shows them."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import signals
from .edits import save_and_announce
from .models import DeliveryRating, Notice, NoticeKind, Shipment
from .statuses import INSTRUCTIONS_OPEN, Status


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
