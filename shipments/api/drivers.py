"""Drivers: GPS positions from the driver app, and the day's route, in and
out (the driver's manifest)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from django.http import HttpRequest
from ninja import Path, Router

from .. import choices, drivers, selectors
from ..models import Route
from .common import responses
from .problems import Problem, pointer
from .schemas import LocationsIn, LocationsOut, ManifestOut, RouteIn, RouteOut
from .shipments import instructions_answer

router = Router(tags=["drivers"])

# A calendar date as the route was posted with it: nothing looser (no
# times, no week dates, no Unix times).
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@router.post("/locations", response=responses({200: LocationsOut}), summary="Record a driver's GPS pings")
def record_locations(request: HttpRequest, payload: LocationsIn):
    """A batch of pings for one driver (made on first sight). The driver's
    position becomes the newest ping by recorded_at; a late, older ping is
    stored but never moves the driver back."""
    try:
        outcome = drivers.record_locations(
            brand=request.auth.brand,
            driver_ref=payload.driver_ref,
            pings=[drivers.Ping(**ping.model_dump()) for ping in payload.pings],
        )
    except drivers.PingRejected as rejected:
        raise Problem(
            422,
            "Invalid request",
            str(rejected),
            kind="validation-error",
            errors=[{"pointer": pointer("pings", rejected.index, rejected.field), "detail": str(rejected)}],
        ) from None
    driver = outcome.driver
    return {
        "driver_ref": driver.ref,
        "stored": outcome.stored,
        "duplicates": outcome.duplicates,
        "position": {
            "lat": driver.last_lat,
            "lng": driver.last_lng,
            "heading_deg": driver.last_heading_deg,
            "speed_mps": driver.last_speed_mps,
            "recorded_at": driver.last_position_at,
        },
    }


@router.post("/routes", response=responses({200: RouteOut}, 404), summary="Set a driver's stops for a day")
def set_route(request: HttpRequest, payload: RouteIn):
    """The driver's ordered stops (tracking numbers) for the date; posting
    again replaces them. Every stop must be one of the brand's shipments."""
    try:
        drivers.set_route(
            brand=request.auth.brand,
            driver_ref=payload.driver_ref,
            date=payload.date,
            tracking_numbers=payload.stops,
        )
    except drivers.UnknownStops as unknown:
        # As for every other endpoint, another brand's parcel is answered
        # as one that does not exist.
        raise Problem(
            404,
            "Unknown tracking numbers",
            str(unknown),
            kind="unknown-tracking-number",
            errors=[
                {"pointer": pointer("stops", index), "detail": f"No shipment {number!r}.", "code": "not_found"}
                for index, number in unknown.positions
            ],
        ) from None
    except ValueError as exc:
        raise Problem(
            422,
            "Invalid request",
            str(exc),
            kind="validation-error",
            errors=[{"pointer": pointer("stops"), "detail": str(exc), "code": "duplicate"}],
        ) from None
    return {"driver_ref": payload.driver_ref, "date": payload.date, "stops": payload.stops}


def route_day(value: str) -> dt.date:
    try:
        if ISO_DATE.match(value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise Problem(
        422,
        "Invalid request",
        f"{value!r} is not a date; use YYYY-MM-DD, like 2026-11-26.",
        kind="validation-error",
        errors=[{"parameter": "date", "detail": "Expected a date as YYYY-MM-DD.", "code": "date_parsing"}],
    )


def manifest_answer(route: Route, brand) -> list[dict]:
    """The route's stops in order with what the driver acts on."""
    stops = list(selectors.manifest_stops(route, brand))
    notes = choices.open_address_notes(stop.shipment_id for stop in stops)
    return [
        {
            "sequence": stop.sequence,
            "tracking_number": stop.shipment.tracking_number,
            "status": stop.shipment.status,
            "recipient": {"name": stop.shipment.recipient_name, "phone": stop.shipment.recipient_phone},
            "destination": {
                "line1": stop.shipment.destination_line1,
                "line2": stop.shipment.destination_line2,
                "city": stop.shipment.destination_city,
                "postcode": stop.shipment.destination_postcode,
                "country": stop.shipment.destination_country,
                "lat": stop.shipment.destination_lat,
                "lng": stop.shipment.destination_lng,
            },
            "delivery_instructions": instructions_answer(stop.shipment),
            "delivery_choice": choices.choice_data(choices.choice_of(stop.shipment)),
            "address_note": notes.get(stop.shipment_id),
            "completed_at": stop.completed_at,
        }
        for stop in stops
    ]


@router.get(
    "/routes/{driver_ref}/{date}",
    response=responses({200: ManifestOut}, 404),
    summary="A driver's manifest for a day",
)
def get_manifest(
    request: HttpRequest,
    driver_ref: str,
    date: Annotated[str, Path(description="The route's day, as YYYY-MM-DD.", examples=["2026-11-26"])],
):
    """The driver's stops for the day, in order, each with the parcel's
    status, the recipient, the full destination and the customer's delivery
    instructions. Another brand's driver, or a day without a route, is
    answered as a driver that does not exist."""
    day = route_day(date)
    route = selectors.brand_route(request.auth.brand, driver_ref, day)
    if route is None:
        raise Problem(404, "Not Found", f"No route for driver {driver_ref!r} on {day.isoformat()}.")
    return {"driver_ref": driver_ref, "date": day, "stops": manifest_answer(route, request.auth.brand)}
