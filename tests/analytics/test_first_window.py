"""The first promised window's end is kept when a later window replaces
it: on-time is measured against it."""

import pytest

from shipments import edits
from shipments.models import Shipment

from .conftest import at

pytestmark = pytest.mark.django_db


def stored(shipment):
    return Shipment.objects.values_list("first_window_end", "promised_window_end").get(pk=shipment.pk)


def test_created_with_a_window(make_shipment):
    shipment = make_shipment(promised_window_end=at(13))
    assert stored(shipment) == (at(13), at(13))
    edits.edit_shipment(shipment=shipment, fields={"promised_window_end": at(17)})
    assert stored(shipment) == (at(13), at(17))


def test_first_promised_by_an_edit_then_kept(make_shipment):
    shipment = make_shipment()
    assert stored(shipment) == (None, None)
    edits.edit_shipment(shipment=shipment, fields={"recipient_name": "Grace"})
    assert stored(shipment) == (None, None)
    edits.edit_shipment(shipment=shipment, fields={"promised_window_end": at(12)})
    edits.edit_shipment(shipment=shipment, fields={"promised_window_end": at(18)})
    assert stored(shipment) == (at(12), at(18))


def test_through_the_api(api, db):
    from tests.shipments.api_helpers import SHIPMENT

    assert api.post("/shipments", SHIPMENT).status_code == 201
    shipment = Shipment.objects.get(tracking_number=SHIPMENT["tracking_number"])
    assert shipment.first_window_end.isoformat() == "2026-11-26T13:00:00+00:00"
