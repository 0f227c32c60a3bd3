"""Drivers: GPS positions from the driver app, and the day's route."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from .. import drivers
from .common import responses
from .problems import Problem, pointer
from .schemas import LocationsIn, LocationsOut, RouteIn, RouteOut

router = Router(tags=["drivers"])


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
