"""The API's bodies, in and out. Field names follow DESIGN.md's contract.

Checks that belong to one item of a batch (a status we don't know, a time
without an offset, coordinates out of range) are left to the services, so
that one bad event is answered as that item's error and the rest are kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, AllowInfNan, AwareDatetime, BaseModel, BeforeValidator, Strict, model_validator

from .. import bounds
from ..statuses import Status, Substatus

MAX_BATCH = 1000
STATUS_VALUES = ", ".join(s.value for s in Status)
SUBSTATUS_VALUES = ", ".join(s.value for s in Substatus if s.value)


def _text(value):
    # JSON has no date type: a date or time is a string, never a number of
    # seconds that pydantic would otherwise read as a Unix time.
    if not isinstance(value, str):
        raise ValueError("Expected an ISO 8601 string.")
    return value


def _in_utc(value: dt.datetime) -> dt.datetime:
    # Stored in UTC: converted here, an offset the database cannot hold
    # (beyond ±15:59) never reaches it, and a year no parcel has is refused
    # here rather than by the database.
    if value.tzinfo is None:
        return value  # answered per item by the services, with its field
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("Date and time out of range.") from None
    if not bounds.in_time_range(utc):
        raise ValueError(f"Date and time must be between {bounds.EARLIEST:%Y} and {bounds.LATEST:%Y}.")
    return utc


Timestamp = Annotated[dt.datetime, BeforeValidator(_text), AfterValidator(_in_utc)]
ZonedTimestamp = Annotated[AwareDatetime, BeforeValidator(_text), AfterValidator(_in_utc)]
Day = Annotated[dt.date, BeforeValidator(_text)]
# A finite number, not a numeric string.
Number = Annotated[float, Strict(), AllowInfNan(False)]


class In(BaseModel):
    """A request body. Plain pydantic rather than ninja's Schema, which
    reads any object by attribute and so would take a string for a nested
    object; fields not in the contract are ignored."""


class RecipientIn(In):
    name: str = Field("", max_length=120)
    phone: str = Field("", max_length=20, description="E.164, like +447700900123.")
    email: str = Field("", max_length=254)
    language: str = Field("", max_length=8)
    timezone: str = Field("", max_length=64, description="An IANA time zone, like Europe/London.")


class DestinationIn(In):
    line1: str = Field("", max_length=200)
    line2: str = Field("", max_length=200)
    city: str = Field("", max_length=100)
    postcode: str = Field("", max_length=20)
    country: str = Field("", max_length=2, description="ISO 3166-1 alpha-2.")
    lat: Number | None = Field(None, ge=bounds.LATITUDE[0], le=bounds.LATITUDE[1])
    lng: Number | None = Field(None, ge=bounds.LONGITUDE[0], le=bounds.LONGITUDE[1])


class WindowIn(In):
    start: ZonedTimestamp
    end: ZonedTimestamp

    @model_validator(mode="after")
    def end_after_start(self):
        if not bounds.is_window(self.start, self.end):
            raise ValueError(bounds.WINDOW_ERROR)
        return self


class ShipmentIn(In):
    # What can sit in a URL path segment as it is, so that GET
    # /shipments/{tracking_number} reaches every shipment made here.
    tracking_number: str = Field(
        min_length=1,
        max_length=bounds.TRACKING_NUMBER_MAX_LENGTH,
        pattern=bounds.TRACKING_NUMBER_PATTERN,
        examples=["LM100001"],
    )
    carrier: str = Field("", max_length=64)
    order_ref: str = Field("", max_length=64)
    recipient: RecipientIn = Field(default_factory=RecipientIn)
    destination: DestinationIn = Field(default_factory=DestinationIn)
    promised_window: WindowIn | None = None
    eta: ZonedTimestamp | None = None


class LocationIn(In):
    lat: Number | None = None
    lng: Number | None = None
    city: str = Field("", max_length=100)


class EventIn(In):
    tracking_number: str = Field(min_length=1, max_length=64)
    status: str = Field(max_length=32, description=f"One of: {STATUS_VALUES}.")
    occurred_at: Timestamp = Field(description="With a time zone offset, like 2026-11-26T08:02:00Z.")
    external_id: str = Field(
        "", max_length=128, description="The source's id; an event sent again with the same id is a duplicate."
    )
    substatus: str = Field("", max_length=32, description=f"Empty or one of: {SUBSTATUS_VALUES}.")
    carrier_code: str = Field("", max_length=64)
    description: str = Field("", max_length=500)
    location: LocationIn | None = None
    source: Literal["api", "driver", "carrier"] = "api"


class EventBatchIn(In):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class ItemError(Schema):
    type: str
    title: str
    status: int
    detail: str
    pointer: str


class ItemResult(Schema):
    index: int
    result: Literal["accepted", "duplicate", "error"]
    error: ItemError | None = None


class BatchResult(Schema):
    accepted: int
    duplicates: int
    errors: int
    results: list[ItemResult]


class EventOut(Schema):
    status: str
    substatus: str
    occurred_at: dt.datetime
    received_at: dt.datetime
    source: str
    external_id: str
    carrier_code: str
    description: str
    location_city: str
    location_lat: float | None
    location_lng: float | None


class RecipientOut(Schema):
    name: str
    phone: str
    email: str
    language: str
    timezone: str


class DestinationOut(Schema):
    line1: str
    line2: str
    city: str
    postcode: str
    country: str
    lat: float | None
    lng: float | None


class WindowOut(Schema):
    start: dt.datetime | None
    end: dt.datetime | None


class ProofOut(Schema):
    received_by: str
    has_photo: bool
    has_signature: bool


class InstructionsOut(Schema):
    text: str = Field(description="What the customer asked the driver; empty when they left none.")
    updated_at: dt.datetime | None = Field(description="When they last set it; null when they never did.")


class AddressNoteOut(Schema):
    text: str = Field(
        description="The customer's correction or completion of the address, as they wrote it. It went to "
        "support and does not change the destination; shown while their report is open."
    )
    at: dt.datetime = Field(description="When the customer wrote it.")


class OpeningHoursOut(Schema):
    day: int = Field(description="0 is Monday, 6 Sunday.")
    opens: str = Field(description="HH:MM, local time.")
    closes: str


class PickupPointOut(Schema):
    id: int
    name: str
    line1: str
    line2: str
    postcode: str
    city: str
    country: str
    lat: float | None
    lng: float | None
    opening_hours: list[OpeningHoursOut]
    active: bool


class DeliveryChoiceOut(Schema):
    kind: Literal["new_day", "safe_place", "neighbour", "pickup_point"]
    detail: str = Field(description="The safe place, or the neighbour's name and house number.")
    date: dt.date | None = Field(description="The new day, for new_day.")
    pickup_point: PickupPointOut | None
    updated_at: dt.datetime


class PickupHoldOut(Schema):
    pickup_point: PickupPointOut
    collection_code: str
    collect_by: dt.date | None
    updated_at: dt.datetime


class ShipmentOut(Schema):
    tracking_number: str
    carrier: str
    order_ref: str
    status: str
    substatus: str
    status_changed_at: dt.datetime | None
    delivered_at: dt.datetime | None
    eta: dt.datetime | None = Field(
        description="The best current estimate of the arrival: the portal's own while the parcel is on a van "
        "(eta_source computed), else the brand's (brand_eta)."
    )
    eta_window: WindowOut = Field(description="The best current window, from the same source as eta.")
    eta_source: Literal["brand", "computed"] = Field(
        description="Whose estimate eta and eta_window are: the brand's own, or the portal's from the van."
    )
    eta_computed_at: dt.datetime | None = Field(
        description="When the portal last worked its estimate out; null when it has none."
    )
    brand_eta: dt.datetime | None = Field(description="The ETA the brand sent, kept as it was sent.")
    promised_window: WindowOut = Field(description="The window the brand promised, kept as it was sent.")
    recipient: RecipientOut
    destination: DestinationOut
    proof_of_delivery: ProofOut
    delivery_instructions: InstructionsOut
    delivery_choice: DeliveryChoiceOut | None = Field(description="What the customer chose after a failed attempt.")
    address_note: AddressNoteOut | None = Field(description="The customer's latest note on the address, while open.")
    pickup: PickupHoldOut | None = Field(description="Where the parcel waits to be collected, with its code.")
    tracking_url: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    events: list[EventOut]


class PingIn(In):
    lat: Number = Field(ge=bounds.LATITUDE[0], le=bounds.LATITUDE[1])
    lng: Number = Field(ge=bounds.LONGITUDE[0], le=bounds.LONGITUDE[1])
    recorded_at: ZonedTimestamp
    accuracy_m: Number | None = Field(None, ge=0)
    speed_mps: Number | None = Field(None, ge=0)
    heading_deg: Number | None = Field(None, ge=0, le=360)


class LocationsIn(In):
    driver_ref: str = Field(min_length=1, max_length=64)
    pings: list[PingIn] = Field(min_length=1, max_length=MAX_BATCH)


class PositionOut(Schema):
    lat: float | None
    lng: float | None
    heading_deg: float | None
    speed_mps: float | None
    recorded_at: dt.datetime | None


class LocationsOut(Schema):
    driver_ref: str
    stored: int
    duplicates: int
    position: PositionOut


class RouteIn(In):
    driver_ref: str = Field(min_length=1, max_length=64)
    date: Day
    stops: list[str] = Field(max_length=MAX_BATCH, description="Tracking numbers, in the order of delivery.")


class RouteOut(Schema):
    driver_ref: str
    date: dt.date
    stops: list[str]


class ManifestRecipientOut(Schema):
    name: str
    phone: str


class ManifestStopOut(Schema):
    sequence: int
    tracking_number: str
    status: str
    recipient: ManifestRecipientOut
    destination: DestinationOut
    delivery_instructions: InstructionsOut
    delivery_choice: DeliveryChoiceOut | None
    address_note: AddressNoteOut | None = Field(
        description="The customer's latest note on the address, sent to support; the destination is unchanged."
    )
    completed_at: dt.datetime | None


class ManifestOut(Schema):
    driver_ref: str
    date: dt.date
    stops: list[ManifestStopOut]


class WebhookEnvelope(In):
    """The generic webhook's body, Standard Webhooks style: the events sit
    in ``data`` in the same form as POST /api/v1/events."""

    type: str = Field(max_length=100)
    timestamp: Timestamp | None = None
    data: EventBatchIn
