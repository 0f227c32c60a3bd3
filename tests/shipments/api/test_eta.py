"""The API's ETA: ``eta``, ``eta_window`` and ``eta_source`` are the best
current estimate (the portal's own while the parcel is on a van), the
brand's own kept in ``brand_eta`` and ``promised_window``; all in the
OpenAPI document; another brand's key sees none of it."""

from datetime import datetime, timedelta

from django.utils import timezone

from shipments import drivers, eta
from shipments import services as shipment_services
from shipments.services import NewEvent


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def on_van(brand, make_shipment, now, **fields):
    shipment = make_shipment(destination_lat=51.5034, destination_lng=-0.11, **fields)
    shipment_services.record_event(
        shipment_id=shipment.pk,
        event=NewEvent(status="out_for_delivery", occurred_at=now - timedelta(hours=1), source="api", external_id="o"),
    )
    route = drivers.set_route(
        brand=brand, driver_ref="van-1", date=now.date(), tracking_numbers=[shipment.tracking_number]
    )
    drivers.record_locations(brand=brand, driver_ref="van-1", pings=[drivers.Ping(51.5034, -0.1276, now)])
    eta.recompute_route(route_id=route.pk, now=now)
    shipment.refresh_from_db()
    return shipment


def test_a_parcel_on_a_van_answers_the_computed_estimate_beside_the_brands(api, brand, make_shipment):
    now = timezone.now().replace(microsecond=0)
    promised = {"promised_window_start": now + timedelta(hours=4), "promised_window_end": now + timedelta(hours=6)}
    shipment = on_van(brand, make_shipment, now, eta=now + timedelta(hours=5), **promised)
    body = api.get(f"/shipments/{shipment.tracking_number}").json()
    assert body["eta_source"] == "computed"
    assert parse(body["eta"]) == shipment.computed_eta
    assert parse(body["eta_window"]["start"]) == shipment.computed_window_start
    assert parse(body["eta_window"]["end"]) == shipment.computed_window_end
    assert parse(body["eta_computed_at"]) == now
    # The brand's own, as it sent it.
    assert parse(body["brand_eta"]) == now + timedelta(hours=5)
    assert parse(body["promised_window"]["start"]) == now + timedelta(hours=4)
    assert parse(body["promised_window"]["end"]) == now + timedelta(hours=6)


def test_a_parcel_off_a_van_answers_the_brands_own(api, make_shipment):
    now = timezone.now().replace(microsecond=0)
    shipment = make_shipment(
        eta=now + timedelta(hours=5),
        promised_window_start=now + timedelta(hours=4),
        promised_window_end=now + timedelta(hours=6),
    )
    body = api.get(f"/shipments/{shipment.tracking_number}").json()
    assert body["eta_source"] == "brand"
    assert body["eta_window"] == body["promised_window"]
    assert body["eta"] == body["brand_eta"] and body["eta"] is not None
    assert body["eta_computed_at"] is None


def test_another_brands_key_sees_nothing(other_api, brand, make_shipment):
    now = timezone.now().replace(microsecond=0)
    shipment = on_van(brand, make_shipment, now)
    response = other_api.get(f"/shipments/{shipment.tracking_number}")
    assert response.status_code == 404
    assert b"eta_window" not in response.content


def test_the_openapi_document_describes_the_estimate(client):
    document = client.get("/api/v1/openapi.json").json()
    shipment = document["components"]["schemas"]["ShipmentOut"]
    for name in ("eta", "eta_window", "eta_source", "eta_computed_at", "brand_eta", "promised_window"):
        assert name in shipment["properties"], name
        assert name in shipment["required"], name
    assert shipment["properties"]["eta_source"]["enum"] == ["brand", "computed"]
    assert "description" in shipment["properties"]["eta"]


def test_a_parcel_taken_off_the_route_answers_the_brands_own_again(api, brand, make_shipment):
    now = timezone.now().replace(microsecond=0)
    promised = {"promised_window_start": now + timedelta(hours=4), "promised_window_end": now + timedelta(hours=6)}
    shipment = on_van(brand, make_shipment, now, **promised)
    assert api.get(f"/shipments/{shipment.tracking_number}").json()["eta_source"] == "computed"
    make_shipment(tracking_number="LM000002", destination_lat=51.51, destination_lng=-0.12)
    response = api.post("/routes", {"driver_ref": "van-1", "date": now.date().isoformat(), "stops": ["LM000002"]})
    assert response.status_code == 200
    body = api.get(f"/shipments/{shipment.tracking_number}").json()
    assert body["eta_source"] == "brand"
    assert body["eta_window"] == body["promised_window"]
    assert body["eta_computed_at"] is None
    shipment.refresh_from_db()
    assert (shipment.computed_eta, shipment.computed_window_start, shipment.computed_window_end) == (None,) * 3
    # The window it was last told stays, for the next route's moves to count from.
    assert shipment.eta_told_end is not None


def test_a_parcel_on_another_route_of_today_keeps_its_estimate(brand, make_shipment):
    now = timezone.now().replace(microsecond=0)
    shipment = on_van(brand, make_shipment, now)
    drivers.set_route(brand=brand, driver_ref="van-2", date=now.date(), tracking_numbers=[shipment.tracking_number])
    drivers.set_route(brand=brand, driver_ref="van-1", date=now.date(), tracking_numbers=[])
    shipment.refresh_from_db()
    assert shipment.computed_eta is not None


def test_a_stop_deleted_by_staff_or_a_route_deleted_drops_the_estimate(brand, make_shipment):
    from shipments import edits
    from shipments.models import Route

    now = timezone.now().replace(microsecond=0)
    shipment = on_van(brand, make_shipment, now)
    route = Route.objects.get(driver__ref="van-1")
    edits.edit_route_stops(route=route, delete=list(route.stops.all()))
    shipment.refresh_from_db()
    assert shipment.computed_eta is None
    shipment = on_van(brand, make_shipment, now, tracking_number="LM000009")
    edits.delete_route(route=Route.objects.get(driver__ref="van-1"))
    shipment.refresh_from_db()
    assert shipment.computed_eta is None and shipment.computed_window_end is None
