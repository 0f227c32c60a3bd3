"""Pickup points: the brand's shops and lockers where parcels can be
collected (list, create), and a parcel's hold at one (where, the code,
until when)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Router, Status
from pydantic import BaseModel

from .. import choices
from ..choice_models import PickupPoint
from .common import responses
from .problems import Problem, pointer
from .schemas import Day, In, Number, PickupPointOut, ShipmentOut
from .shipments import brand_shipment_or_404, shipment_answer

router = Router(tags=["pickup points"])


class OpeningHoursIn(BaseModel):
    day: int = Field(ge=0, le=6, strict=True, description="0 is Monday, 6 Sunday.")
    opens: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["09:00"])
    closes: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["17:30"])


class PickupPointIn(In):
    name: str = Field(min_length=1, max_length=120)
    line1: str = Field(min_length=1, max_length=200)
    line2: str = Field("", max_length=200)
    postcode: str = Field("", max_length=20)
    city: str = Field(min_length=1, max_length=100)
    country: str = Field("", max_length=2)
    lat: Number | None = None
    lng: Number | None = None
    opening_hours: list[OpeningHoursIn] = Field(default_factory=list, max_length=50)
    active: bool = Field(True, strict=True)


class PickupHoldIn(In):
    pickup_point: int = Field(description="The id of one of the brand's pickup points.")
    collection_code: str = Field("", max_length=32)
    collect_by: Day | None = Field(None, description="The last day to collect it, as YYYY-MM-DD.")


@router.get("/pickup-points", response=responses({200: list[PickupPointOut]}), summary="List pickup points")
def list_pickup_points(request: HttpRequest):
    """The brand's pickup points, active or not, by name."""
    return [choices.pickup_point_data(point) for point in PickupPoint.objects.filter(brand=request.auth.brand)]


@router.post("/pickup-points", response=responses({201: PickupPointOut}), summary="Create a pickup point")
def create_pickup_point(request: HttpRequest, payload: PickupPointIn):
    fields = payload.model_dump()
    fields["country"] = fields["country"].upper()
    try:
        point = choices.create_pickup_point(brand=request.auth.brand, **fields)
    except choices.PickupPointRefused as refused:
        raise Problem(
            422,
            "Invalid request",
            "The pickup point cannot be saved as given; see errors.",
            kind="validation-error",
            errors=[
                {"pointer": pointer(name) if name != "__all__" else "#", "detail": message, "code": "invalid"}
                for name, messages in refused.errors.items()
                for message in messages
            ],
        ) from None
    return Status(201, choices.pickup_point_data(point))


@router.put(
    "/shipments/{tracking_number}/pickup",
    response=responses({200: ShipmentOut}, 404),
    summary="Where the parcel waits to be collected",
)
def set_pickup(request: HttpRequest, tracking_number: str, payload: PickupHoldIn):
    """Set the pickup point a parcel waits at, its collection code and the
    last day to collect it: the tracking page shows them once the parcel
    is available for pickup. Another brand's point is answered as none."""
    shipment = brand_shipment_or_404(request, tracking_number)
    point = PickupPoint.objects.filter(brand=request.auth.brand, pk=payload.pickup_point).first()
    if point is None:
        raise Problem(
            422,
            "Invalid request",
            f"No pickup point {payload.pickup_point} of this brand.",
            kind="validation-error",
            errors=[{"pointer": pointer("pickup_point"), "detail": "Unknown pickup point.", "code": "unknown"}],
        )
    choices.set_pickup_hold(
        shipment=shipment,
        pickup_point=point,
        collection_code=payload.collection_code,
        collect_by=payload.collect_by,
    )
    shipment = brand_shipment_or_404(request, tracking_number)
    return shipment_answer(shipment, shipment.events.all())
