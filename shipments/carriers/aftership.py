"""AfterShip tracking webhooks (``tracking_update``).

Signature, as AfterShip documents it: the ``aftership-hmac-sha256`` header
is the base64 HMAC-SHA256 of the raw body, keyed with the webhook secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from ..models import Brand, EventSource
from ..services import NewEvent
from ..statuses import Status, Substatus
from . import PayloadInvalid, SignatureInvalid, derived_id, parse_time, text

TAGS = {
    "Pending": Status.PENDING,
    "InfoReceived": Status.INFO_RECEIVED,
    "InTransit": Status.IN_TRANSIT,
    "OutForDelivery": Status.OUT_FOR_DELIVERY,
    "AttemptFail": Status.FAILED_ATTEMPT,
    "AvailableForPickup": Status.AVAILABLE_FOR_PICKUP,
    "Delivered": Status.DELIVERED,
    "Exception": Status.EXCEPTION,
    "Expired": Status.EXCEPTION,
}
# Subtags that say more than their tag; Exception_011 is a return that has
# reached the sender, which for us is a status of its own.
SUBTAG_STATUSES = {"Exception_011": Status.RETURNED_TO_SENDER}
SUBTAGS = {
    "Exception_002": Substatus.ADDRESS_ISSUE,
    "Exception_003": Substatus.REFUSED,
    "Exception_004": Substatus.CUSTOMS_HOLD,
    "Exception_005": Substatus.DELAYED,
    "Exception_007": Substatus.ADDRESS_ISSUE,
    "Exception_012": Substatus.DAMAGED,
    "Exception_013": Substatus.LOST,
    "AttemptFail_001": Substatus.RECIPIENT_UNAVAILABLE,
}
# Where the scans sit in the body, for the per-item answer's pointers.
ITEMS_POINTER = "#/msg/checkpoints"
HANDLED = {"tracking_update"}


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(brand: Brand, headers, body: bytes) -> None:
    if not brand.aftership_webhook_secret:
        raise SignatureInvalid("This brand has no AfterShip webhook secret configured.")
    given = headers.get("aftership-hmac-sha256", "")
    if not given:
        raise SignatureInvalid("Missing aftership-hmac-sha256 header.")
    if not hmac.compare_digest(sign(brand.aftership_webhook_secret, body).encode(), given.strip().encode()):
        raise SignatureInvalid("aftership-hmac-sha256 does not match the body.")


def events(document) -> list[tuple[str, NewEvent]]:
    if not isinstance(document, dict):
        raise PayloadInvalid("Expected an AfterShip webhook object.")
    if document.get("event") not in HANDLED:
        return []
    tracking = document.get("msg")
    if not isinstance(tracking, dict) or not isinstance(tracking.get("tracking_number"), str):
        raise PayloadInvalid("An AfterShip tracking webhook needs msg.tracking_number.", pointer="#/msg")
    checkpoints = tracking.get("checkpoints") or []
    if not isinstance(checkpoints, list):
        raise PayloadInvalid("Expected a list.", pointer="#/msg/checkpoints")
    tracking_id = text(tracking.get("id"), 64) or tracking["tracking_number"]
    found = []
    for n, checkpoint in enumerate(checkpoints):
        where = f"#/msg/checkpoints/{n}"
        if not isinstance(checkpoint, dict):
            raise PayloadInvalid("Expected a checkpoint object.", pointer=where)
        tag, subtag = text(checkpoint.get("tag"), 32), text(checkpoint.get("subtag"), 32)
        occurred_at = parse_time(checkpoint.get("checkpoint_time"), f"{where}/checkpoint_time")
        if occurred_at.tzinfo is None and checkpoint.get("created_at"):
            # AfterShip passes on the carrier's local time, sometimes without
            # an offset; its own created_at (UTC) then places the scan.
            occurred_at = parse_time(checkpoint.get("created_at"), f"{where}/created_at")
        message = text(checkpoint.get("message"), 500)
        found.append(
            (
                tracking["tracking_number"],
                NewEvent(
                    status=SUBTAG_STATUSES.get(subtag) or TAGS.get(tag, tag),
                    substatus=SUBTAGS.get(subtag, Substatus.NONE),
                    occurred_at=occurred_at,
                    source=EventSource.CARRIER,
                    external_id=derived_id(
                        "aftership", tracking_id, checkpoint.get("checkpoint_time"), tag, subtag, message
                    ),
                    carrier_code=(subtag or tag)[:64],
                    description=message,
                    location_city=text(checkpoint.get("city"), 100),
                ),
            )
        )
    return found
