"""Shipments: create one (idempotent on tracking number), read one with its
timeline, and record its delivery with proof."""

from __future__ import annotations

from django.core.exceptions import ValidationError as ModelValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, File, Form, Router, Schema, Status, UploadedFile

from .. import choices, eta, images, selectors, services
from ..models import EventSource, Shipment
from ..services import EventRejected, NewEvent
from .auth import BrandKey
from .common import responses
from .problems import Problem, pointer
from .schemas import ShipmentIn, ShipmentOut, Timestamp

router = Router(tags=["shipments"])

# Where each model field comes from in the request body, for error pointers.
FIELD_PATHS = {
    "carrier": ("carrier",),
    "order_ref": ("order_ref",),
    "recipient_name": ("recipient", "name"),
    "recipient_phone": ("recipient", "phone"),
    "recipient_email": ("recipient", "email"),
    "recipient_language": ("recipient", "language"),
    "recipient_timezone": ("recipient", "timezone"),
    "destination_line1": ("destination", "line1"),
    "destination_line2": ("destination", "line2"),
    "destination_city": ("destination", "city"),
    "destination_postcode": ("destination", "postcode"),
    "destination_country": ("destination", "country"),
    "destination_lat": ("destination", "lat"),
    "destination_lng": ("destination", "lng"),
    "promised_window_start": ("promised_window", "start"),
    "promised_window_end": ("promised_window", "end"),
    "eta": ("eta",),
}

# Proof images: decoded and re-encoded by shipments.images, whatever the
# client claims; a declared type, when it is not the generic one, must be
# the image's own.
MAX_IMAGE_BYTES = images.MAX_IMAGE_BYTES
GENERIC_CONTENT_TYPES = frozenset({"", "application/octet-stream"})


def shipment_fields(payload: ShipmentIn) -> dict:
    recipient, destination, window = payload.recipient, payload.destination, payload.promised_window
    return {
        "carrier": payload.carrier,
        "order_ref": payload.order_ref,
        "recipient_name": recipient.name,
        "recipient_phone": recipient.phone,
        "recipient_email": recipient.email,
        "recipient_language": recipient.language,
        "recipient_timezone": recipient.timezone,
        "destination_line1": destination.line1,
        "destination_line2": destination.line2,
        "destination_city": destination.city,
        "destination_postcode": destination.postcode,
        "destination_country": destination.country.upper(),
        "destination_lat": destination.lat,
        "destination_lng": destination.lng,
        "promised_window_start": window.start if window else None,
        "promised_window_end": window.end if window else None,
        "eta": payload.eta,
    }


def check_model_rules(fields: dict) -> None:
    """The model's own validators (E.164 phone, email, time zone, ranges),
    answered field by field."""
    try:
        Shipment(**fields).clean_fields(exclude=[f.name for f in Shipment._meta.fields if f.name not in fields])
    except ModelValidationError as exc:
        raise Problem(
            422,
            "Invalid request",
            "Some fields have values the portal cannot accept; see errors.",
            kind="validation-error",
            errors=[
                {"pointer": pointer(*FIELD_PATHS[name]), "detail": message, "code": "invalid"}
                for name, messages in exc.message_dict.items()
                for message in messages
            ],
        ) from None


def instructions_answer(shipment: Shipment) -> dict:
    """The customer's delivery instructions as every answer shows them: the
    text ("" when none) and when it was set (null when never)."""
    return {"text": shipment.delivery_instructions, "updated_at": shipment.delivery_instructions_at}


def _estimate(shipment: Shipment) -> dict:
    chosen = eta.best(shipment, timezone.now())
    return {
        "eta": chosen.eta,
        "eta_window": {"start": chosen.window_start, "end": chosen.window_end},
        "eta_source": chosen.source,
        "eta_computed_at": shipment.computed_at if chosen.source == "computed" else None,
    }


def hold_answer(hold) -> dict | None:
    if hold is None:
        return None
    return {
        "pickup_point": choices.pickup_point_data(hold.pickup_point),
        "collection_code": hold.collection_code,
        "collect_by": hold.collect_by,
        "updated_at": hold.updated_at,
    }


def shipment_answer(shipment: Shipment, events) -> dict:
    return {
        "tracking_number": shipment.tracking_number,
        "carrier": shipment.carrier,
        "order_ref": shipment.order_ref,
        "status": shipment.status,
        "substatus": shipment.substatus,
        "status_changed_at": shipment.status_changed_at,
        "delivered_at": shipment.delivered_at,
        **_estimate(shipment),
        "brand_eta": shipment.eta,
        "promised_window": {"start": shipment.promised_window_start, "end": shipment.promised_window_end},
        "recipient": {
            "name": shipment.recipient_name,
            "phone": shipment.recipient_phone,
            "email": shipment.recipient_email,
            "language": shipment.recipient_language,
            "timezone": shipment.recipient_timezone,
        },
        "destination": {
            "line1": shipment.destination_line1,
            "line2": shipment.destination_line2,
            "city": shipment.destination_city,
            "postcode": shipment.destination_postcode,
            "country": shipment.destination_country,
            "lat": shipment.destination_lat,
            "lng": shipment.destination_lng,
        },
        "proof_of_delivery": {
            "received_by": shipment.proof_received_by,
            "has_photo": bool(shipment.proof_photo),
            "has_signature": bool(shipment.proof_signature),
        },
        "delivery_instructions": instructions_answer(shipment),
        "delivery_choice": choices.choice_data(choices.choice_of(shipment)),
        "address_note": choices.open_address_notes([shipment.pk]).get(shipment.pk),
        "pickup": hold_answer(choices.hold_of(shipment)),
        "tracking_url": shipment.tracking_url,
        "version": shipment.version,
        "created_at": shipment.created_at,
        "updated_at": shipment.updated_at,
        "events": list(events),
    }


def brand_shipment_or_404(request: HttpRequest, tracking_number: str) -> Shipment:
    """The caller's brand's shipment with its events (two queries); another
    brand's is answered exactly as one that does not exist."""
    shipment = selectors.brand_shipment_with_events(request.auth.brand, tracking_number)
    if shipment is None:
        raise Problem(404, "Not Found", f"No shipment {tracking_number!r}.", kind="unknown-tracking-number")
    return shipment


@router.post("/shipments", response=responses({200: ShipmentOut, 201: ShipmentOut}), summary="Create a shipment")
def create_shipment(request: HttpRequest, payload: ShipmentIn):
    """Create a shipment. The same tracking number again (for this brand)
    answers 200 with the existing shipment, unchanged."""
    fields = shipment_fields(payload)
    check_model_rules(fields)
    shipment, created = services.create_shipment(
        brand=request.auth.brand, tracking_number=payload.tracking_number, **fields
    )
    if created:
        return Status(201, shipment_answer(shipment, []))
    shipment = brand_shipment_or_404(request, shipment.tracking_number)
    return Status(200, shipment_answer(shipment, shipment.events.all()))


@router.get(
    "/shipments/{tracking_number}", response=responses({200: ShipmentOut}, 404), summary="A shipment and its events"
)
def get_shipment(request: HttpRequest, tracking_number: str):
    shipment = brand_shipment_or_404(request, tracking_number)
    return shipment_answer(shipment, shipment.events.all())


def proof_image(upload: UploadedFile | None, field: str) -> ContentFile | None:
    """The upload as a clean image (shipments.images), or the problem that
    says why not: 413 for too many bytes or pixels, 415 for anything that
    is not a JPEG, PNG or WebP image sent with its own content type."""
    if upload is None:
        return None
    unsupported = Problem(
        415,
        "Unsupported Media Type",
        f"{field} must be a JPEG, PNG or WebP image, sent with its own content type.",
        kind="unsupported-image",
        errors=[{"pointer": pointer(field), "detail": "Not a JPEG, PNG or WebP image.", "code": "bad_image"}],
    )
    declared = (upload.content_type or "").partition(";")[0].strip().lower()
    if declared not in GENERIC_CONTENT_TYPES and declared not in images.CONTENT_TYPES.values():
        raise unsupported
    try:
        clean = images.clean_image(upload, max_bytes=MAX_IMAGE_BYTES)
    except images.ImageRefused as refused:
        if refused.code == "not_an_image":
            raise unsupported from None
        raise Problem(
            413,
            "Content Too Large",
            f"{field}: {refused}",
            kind="too-large",
            errors=[{"pointer": pointer(field), "detail": str(refused), "code": refused.code}],
        ) from None
    if declared not in GENERIC_CONTENT_TYPES and declared != images.content_type_for(clean.name):
        raise unsupported
    return clean


class DeliveryForm(Schema):
    occurred_at: Timestamp = Field(description="When it was delivered, with a time zone offset.")
    external_id: str = Field("", max_length=128)
    received_by: str = Field("", max_length=120, description="Who took the parcel.")
    description: str = Field("", max_length=500)


@router.post(
    "/shipments/{tracking_number}/proof-of-delivery",
    auth=BrandKey(uploads=True),
    response=responses({200: ShipmentOut}, 404, 415),
    summary="Record the delivery with its proof",
)
def record_delivery(
    request: HttpRequest,
    tracking_number: str,
    form: Form[DeliveryForm],
    photo: File[UploadedFile] = None,
    signature: File[UploadedFile] = None,
):
    """Record the delivered event (multipart form) and attach its proof:
    a photo, a signature image, the name of who received it. Sending it
    again with the same external_id changes nothing but the proof."""
    shipment = brand_shipment_or_404(request, tracking_number)
    received_by = form.received_by.strip()
    photo_file = proof_image(photo, "photo")
    signature_file = proof_image(signature, "signature")
    if photo_file is None and signature_file is None and not received_by:
        raise Problem(
            422,
            "Invalid request",
            "Send a photo, a signature or the name of who received the parcel.",
            kind="validation-error",
            errors=[{"pointer": pointer("received_by"), "detail": "No proof given.", "code": "missing"}],
        )
    event = NewEvent(
        status="delivered",
        occurred_at=form.occurred_at,
        source=EventSource.DRIVER,
        external_id=form.external_id,
        description=form.description or "Delivered",
    )
    try:
        services.validate_event(event)
    except EventRejected as rejected:
        raise Problem(
            422,
            "Invalid request",
            str(rejected),
            kind="validation-error",
            errors=[{"pointer": pointer(rejected.field), "detail": str(rejected), "code": "invalid"}],
        ) from None
    with transaction.atomic():
        services.record_event(shipment_id=shipment.pk, event=event)
        services.attach_proof_of_delivery(
            shipment_id=shipment.pk, received_by=received_by, photo=photo_file, signature=signature_file
        )
    shipment = brand_shipment_or_404(request, tracking_number)
    return shipment_answer(shipment, shipment.events.all())
