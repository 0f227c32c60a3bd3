"""Fixtures of the page tests: a parcel on a van, the clock frozen."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from shipments import drivers, eta_history
from shipments import services as shipment_services
from shipments.services import NewEvent

from .eta_van import east


@pytest.fixture
def frozen():
    eta_history.forget()
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        yield start


@pytest.fixture
def van(brand, make_shipment, frozen):
    lat, lng = east(3000)
    shipment = make_shipment(
        destination_lat=lat,
        destination_lng=lng,
        promised_window_start=frozen + timedelta(hours=5),
        promised_window_end=frozen + timedelta(hours=7),
    )
    shipment_services.record_event(
        shipment_id=shipment.pk,
        event=NewEvent(
            status="out_for_delivery", occurred_at=frozen - timedelta(hours=1), source="api", external_id="o"
        ),
    )
    route = drivers.set_route(brand=brand, driver_ref="van-1", date=frozen.date(), tracking_numbers=["LM000001"])
    return route, shipment
