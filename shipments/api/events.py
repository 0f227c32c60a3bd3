"""Tracking events, in batches of up to 1,000, each answered on its own."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from .. import services
from ..services import NewEvent
from .common import batch_answer, responses
from .schemas import BatchResult, EventBatchIn, EventIn

router = Router(tags=["events"])


def new_event(item: EventIn, source: str | None = None) -> NewEvent:
    location = item.location
    return NewEvent(
        status=item.status,
        substatus=item.substatus,
        occurred_at=item.occurred_at,
        source=source or item.source,
        external_id=item.external_id,
        carrier_code=item.carrier_code,
        description=item.description,
        location_city=location.city if location else "",
        location_lat=location.lat if location else None,
        location_lng=location.lng if location else None,
    )


def record_batch(brand, batch: EventBatchIn, source: str | None = None, base: str = "#/events") -> dict:
    items = [(item.tracking_number, new_event(item, source)) for item in batch.events]
    return batch_answer(services.record_brand_events(brand=brand, items=items), base)


@router.post(
    "/events", response=responses({200: BatchResult}), exclude_none=True, summary="Record a batch of tracking events"
)
def record_events(request: HttpRequest, payload: EventBatchIn):
    """Up to 1,000 events for the brand's shipments, in one transaction.
    Each is answered by its index: ``accepted``, ``duplicate`` (same source
    and external_id already stored) or ``error`` with the reason; an error in
    one (unknown tracking number, unknown status, a time without offset,
    coordinates out of range) does not stop the others."""
    return record_batch(request.auth.brand, payload)
