"""EasyPost ``tracker.updated`` events.

Signature, as EasyPost documents and its client libraries check it: the
``X-Hmac-Signature`` header is ``hmac-sha256-hex=`` followed by the hex
HMAC-SHA256 of the raw body, keyed with the webhook secret normalised to
Unicode NFKD and encoded as UTF-8.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

from ..models import Brand, EventSource
from ..services import NewEvent
from ..statuses import Status, Substatus
from . import PayloadInvalid, SignatureInvalid, derived_id, parse_time, text

SIGNATURE_PREFIX = "hmac-sha256-hex="

# Tracker and tracking detail statuses.
STATUSES = {
    "unknown": Status.PENDING,
    "pre_transit": Status.INFO_RECEIVED,
    "in_transit": Status.IN_TRANSIT,
    "out_for_delivery": Status.OUT_FOR_DELIVERY,
    "available_for_pickup": Status.AVAILABLE_FOR_PICKUP,
    "delivered": Status.DELIVERED,
    "return_to_sender": Status.RETURNED_TO_SENDER,
    "failure": Status.EXCEPTION,
    "error": Status.EXCEPTION,
    "cancelled": Status.CANCELLED,
}
SUBSTATUSES = {
    "weather_delay": Substatus.WEATHER_DELAY,
    "delayed": Substatus.DELAYED,
    "address_correction": Substatus.ADDRESS_ISSUE,
    "damaged": Substatus.DAMAGED,
    "lost": Substatus.LOST,
    "refused": Substatus.REFUSED,
}
# Where the scans sit in the body, for the per-item answer's pointers.
ITEMS_POINTER = "#/result/tracking_details"
HANDLED = {"tracker.updated", "tracker.created"}


def sign(secret: str, body: bytes) -> str:
    key = unicodedata.normalize("NFKD", secret).encode()
    return SIGNATURE_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(brand: Brand, headers, body: bytes) -> None:
    if not brand.easypost_webhook_secret:
        raise SignatureInvalid("This brand has no EasyPost webhook secret configured.")
    given = headers.get("X-Hmac-Signature", "")
    if not given:
        raise SignatureInvalid("Missing X-Hmac-Signature header.")
    if not hmac.compare_digest(sign(brand.easypost_webhook_secret, body).encode(), given.encode()):
        raise SignatureInvalid("X-Hmac-Signature does not match the body.")


def events(document) -> list[tuple[str, NewEvent]]:
    if not isinstance(document, dict):
        raise PayloadInvalid("Expected an EasyPost Event object.")
    if document.get("description") not in HANDLED:
        return []
    tracker = document.get("result")
    if not isinstance(tracker, dict) or not isinstance(tracker.get("tracking_code"), str):
        raise PayloadInvalid("An EasyPost tracker event needs result.tracking_code.", pointer="#/result")
    details = tracker.get("tracking_details") or []
    if not isinstance(details, list):
        raise PayloadInvalid("Expected a list.", pointer="#/result/tracking_details")
    tracker_id = text(tracker.get("id"), 64)
    found = []
    for n, detail in enumerate(details):
        where = f"#/result/tracking_details/{n}"
        if not isinstance(detail, dict):
            raise PayloadInvalid("Expected a TrackingDetail object.", pointer=where)
        raw_status = text(detail.get("status"), 32)
        raw_detail = text(detail.get("status_detail"), 32)
        occurred_at = parse_time(detail.get("datetime"), f"{where}/datetime")
        location = detail.get("tracking_location") if isinstance(detail.get("tracking_location"), dict) else {}
        message = text(detail.get("message"), 500)
        found.append(
            (
                tracker["tracking_code"],
                NewEvent(
                    # An unknown status is passed on as it came, so that the
                    # item is answered as an error naming it.
                    status=STATUSES.get(raw_status, raw_status),
                    substatus=SUBSTATUSES.get(raw_detail, Substatus.NONE),
                    occurred_at=occurred_at,
                    source=EventSource.CARRIER,
                    external_id=derived_id(
                        "easypost", tracker_id, detail.get("datetime"), raw_status, raw_detail, message
                    ),
                    carrier_code=f"{raw_status}/{raw_detail}"[:64],
                    description=message,
                    location_city=text(location.get("city"), 100),
                ),
            )
        )
    return found
