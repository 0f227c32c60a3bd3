"""Pickup points in the API (list, create) and a parcel's hold at one: each
brand's key sees and names only its own brand's points."""

import json

from shipments import choices
from shipments.models import PickupPoint

from .api_helpers import SHIPMENT, is_problem, pointers

POINT = {
    "name": "Corner Shop",
    "line1": "3 High Street",
    "postcode": "N1 9GU",
    "city": "London",
    "country": "gb",
    "lat": 51.5362,
    "lng": -0.1033,
    "opening_hours": [{"day": 0, "opens": "09:00", "closes": "17:30"}],
}


def put(api, path, body):
    return api.client.put("/api/v1" + path, json.dumps(body), content_type="application/json", **api.headers())


def test_a_brand_creates_and_lists_its_pickup_points(api, other_api, brand):
    created = api.post("/pickup-points", POINT)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "Corner Shop" and body["country"] == "GB" and body["active"] is True
    assert body["opening_hours"] == [{"day": 0, "opens": "09:00", "closes": "17:30"}]
    assert [point["name"] for point in api.get("/pickup-points").json()] == ["Corner Shop"]
    assert other_api.get("/pickup-points").json() == []
    assert PickupPoint.objects.get().brand == brand


def test_bad_pickup_points_are_refused_field_by_field(api):
    bad_hours = is_problem(
        api.post("/pickup-points", {**POINT, "opening_hours": [{"day": 7, "opens": "9", "closes": "x"}]}), 422
    )
    assert any(p.startswith("#/opening_hours/0") for p in pointers(bad_hours))
    assert "#/lat" in pointers(is_problem(api.post("/pickup-points", {**POINT, "lat": 95.0}), 422))
    assert api.post("/pickup-points", POINT).status_code == 201
    twice = is_problem(api.post("/pickup-points", POINT), 422)
    assert "already exists" in json.dumps(twice)
    assert PickupPoint.objects.count() == 1


def test_a_hold_names_the_brand_s_own_point_and_shows_in_the_shipment(api, other_brand):
    assert api.post("/shipments", SHIPMENT).status_code == 201
    point = api.post("/pickup-points", POINT).json()
    rival = choices.create_pickup_point(brand=other_brand, name="Rival", line1="9 Low Road", city="Leeds")

    refused = is_problem(put(api, "/shipments/LM100001/pickup", {"pickup_point": rival.pk}), 422)
    assert "#/pickup_point" in pointers(refused)

    held = put(
        api,
        "/shipments/LM100001/pickup",
        {"pickup_point": point["id"], "collection_code": "K7-2291", "collect_by": "2026-12-04"},
    )
    assert held.status_code == 200, held.content
    pickup = api.get("/shipments/LM100001").json()["pickup"]
    assert pickup["pickup_point"]["name"] == "Corner Shop"
    assert (pickup["collection_code"], pickup["collect_by"]) == ("K7-2291", "2026-12-04")
    assert api.get("/shipments/LM100001").json()["delivery_choice"] is None


def test_another_brand_s_shipment_is_not_found(api, other_api):
    assert api.post("/shipments", SHIPMENT).status_code == 201
    point = other_api.post("/pickup-points", POINT).json()
    is_problem(put(other_api, "/shipments/LM100001/pickup", {"pickup_point": point["id"]}), 404)
