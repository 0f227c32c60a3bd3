"""Delivery instructions reach the people who act on them: the shipment API
and the driver's manifest, GET /api/v1/routes/{driver_ref}/{date}."""

import pytest

from shipments import services
from shipments.models import Stop
from tests.conftest import event
from tests.shipments.api_helpers import SHIPMENT, is_problem, pointers

DAY = "2026-11-26"
ASK = "Leave it with the neighbour at number 5, please."


def leave_instructions_on_the_page(client, shipment, text=ASK):
    """What the customer does: the tracking page's own form, as a browser
    without JavaScript posts it."""
    response = client.post(f"/t/{shipment.public_token}/instructions/", {"instructions": text})
    assert response.status_code == 303, response.content
    shipment.refresh_from_db()
    return shipment


def put_on_route(api, driver_ref, numbers, day=DAY):
    response = api.post("/routes", {"driver_ref": driver_ref, "date": day, "stops": numbers})
    assert response.status_code == 200, response.content


def test_instructions_left_on_the_tracking_page_reach_the_api_and_the_drivers_manifest(client, api, make_shipment):
    first = make_shipment("LM1", recipient_name="Ada Lovelace", recipient_phone="+447700900123")
    second = make_shipment("LM2", destination_line2="Flat 3")
    first = leave_instructions_on_the_page(client, first)
    put_on_route(api, "drv-7", ["LM2", "LM1"])

    answer = api.get("/shipments/LM1").json()
    assert answer["delivery_instructions"]["text"] == ASK
    assert answer["delivery_instructions"]["updated_at"] is not None

    manifest = api.get(f"/routes/drv-7/{DAY}")
    assert manifest.status_code == 200, manifest.content
    body = manifest.json()
    assert body["driver_ref"] == "drv-7" and body["date"] == DAY
    assert [stop["tracking_number"] for stop in body["stops"]] == ["LM2", "LM1"]
    assert [stop["sequence"] for stop in body["stops"]] == [1, 2]
    lm2, lm1 = body["stops"]
    assert lm1["delivery_instructions"]["text"] == ASK
    assert lm1["delivery_instructions"]["updated_at"] == answer["delivery_instructions"]["updated_at"]
    assert lm1["recipient"] == {"name": "Ada Lovelace", "phone": "+447700900123"}
    assert lm1["status"] == "pending"
    assert lm1["completed_at"] is None
    # The brand's own API: the whole address, not the public page's city.
    assert lm2["destination"] == {
        "line1": second.destination_line1,
        "line2": "Flat 3",
        "city": "London",
        "postcode": "SW1A 2AA",
        "country": "GB",
        "lat": 51.5034,
        "lng": -0.1276,
    }
    assert lm2["delivery_instructions"] == {"text": "", "updated_at": None}


def test_instructions_replaced_or_cleared_on_the_page_show_so(client, api, shipment):
    leave_instructions_on_the_page(client, shipment)
    leave_instructions_on_the_page(client, shipment, "Side door.")
    assert api.get(f"/shipments/{shipment.tracking_number}").json()["delivery_instructions"]["text"] == "Side door."
    leave_instructions_on_the_page(client, shipment, "")
    cleared = api.get(f"/shipments/{shipment.tracking_number}").json()["delivery_instructions"]
    assert cleared["text"] == "" and cleared["updated_at"] is not None


def test_a_new_shipment_answers_with_no_instructions(api):
    created = api.post("/shipments", SHIPMENT)
    assert created.status_code == 201
    assert created.json()["delivery_instructions"] == {"text": "", "updated_at": None}
    again = api.post("/shipments", SHIPMENT)
    assert again.status_code == 200
    assert again.json()["delivery_instructions"] == {"text": "", "updated_at": None}


def test_the_manifest_shows_what_is_done(api, make_shipment):
    shipment = make_shipment("LM1")
    make_shipment("LM2")
    put_on_route(api, "drv-7", ["LM1", "LM2"])
    services.record_events(shipment_id=shipment.pk, events=[event("out_for_delivery", 1)])
    Stop.objects.filter(shipment=shipment).update(completed_at="2026-11-26T10:00:00Z")
    stops = api.get(f"/routes/drv-7/{DAY}").json()["stops"]
    assert stops[0]["status"] == "out_for_delivery"
    assert stops[0]["completed_at"].startswith("2026-11-26T10:00:00")
    assert stops[1]["completed_at"] is None


def test_another_brands_driver_is_answered_as_one_that_does_not_exist(api, other_api, make_shipment, other_brand):
    make_shipment("LM1")
    make_shipment("LM9", for_brand=other_brand)
    put_on_route(api, "drv-7", ["LM1"])
    put_on_route(other_api, "drv-9", ["LM9"])

    theirs = is_problem(other_api.get(f"/routes/drv-7/{DAY}"), 404)
    unknown = is_problem(other_api.get(f"/routes/drv-nobody/{DAY}"), 404)
    no_route_that_day = is_problem(api.get("/routes/drv-7/2026-11-27"), 404)
    for answer in (theirs, unknown, no_route_that_day):
        assert answer["type"] == "about:blank" and answer["title"] == "Not Found"
        assert "LM1" not in str(answer)
    # The other brand's own driver is theirs to read.
    assert other_api.get(f"/routes/drv-9/{DAY}").json()["stops"][0]["tracking_number"] == "LM9"
    assert is_problem(api.get(f"/routes/drv-9/{DAY}"), 404)


def test_a_stop_of_another_brands_parcel_never_shows_its_recipient(api, make_shipment, other_brand):
    # A stop an older admin let onto the route, pointing at brand B's parcel.
    make_shipment("LM1")
    theirs = make_shipment("LM9", for_brand=other_brand, recipient_name="Bob Secret", recipient_phone="+447700900999")
    put_on_route(api, "drv-7", ["LM1"])
    route = Stop.objects.get(shipment__tracking_number="LM1").route
    Stop.objects.create(route=route, shipment=theirs, sequence=2)
    body = api.get(f"/routes/drv-7/{DAY}").json()
    assert [stop["tracking_number"] for stop in body["stops"]] == ["LM1"]
    assert "Bob" not in str(body) and "900999" not in str(body)


def test_the_migration_removes_stops_of_another_brands_parcel(make_shipment, other_brand, brand):
    from importlib import import_module

    from django.apps import apps

    from shipments.models import Driver, Route

    ours, theirs = make_shipment("LM1"), make_shipment("LM9", for_brand=other_brand)
    route = Route.objects.create(driver=Driver.objects.create(brand=brand, ref="drv-7"), date=DAY)
    Stop.objects.create(route=route, shipment=ours, sequence=1)
    Stop.objects.create(route=route, shipment=theirs, sequence=2)
    import_module("shipments.migrations.0004_remove_cross_brand_stops").remove_cross_brand_stops(apps, None)
    assert list(Stop.objects.values_list("shipment__tracking_number", flat=True)) == ["LM1"]


def test_a_route_with_no_stops_is_an_empty_manifest(api):
    put_on_route(api, "drv-7", [])
    assert api.get(f"/routes/drv-7/{DAY}").json()["stops"] == []


@pytest.mark.parametrize(
    "day", ["2026-02-30", "tomorrow", "1764547200", "2026-11-26T00:00:00", "26-11-2026", "2026-1-5"]
)
def test_a_bad_date_is_a_422_that_points_at_it(api, day):
    problem = is_problem(api.get(f"/routes/drv-7/{day}"), 422)
    assert pointers(problem) == {"date"}


def test_the_manifest_costs_the_same_queries_however_long_the_route(api, make_shipment, django_assert_max_num_queries):
    short = [make_shipment(f"S{n}").tracking_number for n in range(2)]
    long = [make_shipment(f"L{n}").tracking_number for n in range(40)]
    put_on_route(api, "drv-short", short)
    put_on_route(api, "drv-long", long)
    # The key's look-up and its last-used mark, the route, its stops.
    with django_assert_max_num_queries(4):
        assert len(api.get(f"/routes/drv-short/{DAY}").json()["stops"]) == 2
    with django_assert_max_num_queries(4):
        assert len(api.get(f"/routes/drv-long/{DAY}").json()["stops"]) == 40


def test_the_openapi_document_lists_the_manifest_and_the_instructions(client):
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/routes/{driver_ref}/{date}"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"driver_ref", "date"}
    assert "404" in operation["responses"] and "422" in operation["responses"]
    schemas = document["components"]["schemas"]
    manifest_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    manifest = schemas[manifest_ref.rsplit("/", 1)[1]]
    stop = schemas[manifest["properties"]["stops"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert {"sequence", "tracking_number", "status", "recipient", "destination", "delivery_instructions"} <= set(
        stop["required"]
    )
    assert "delivery_instructions" in schemas["ShipmentOut"]["required"]
    instructions = schemas[schemas["ShipmentOut"]["properties"]["delivery_instructions"]["$ref"].rsplit("/", 1)[1]]
    assert set(instructions["properties"]) == {"text", "updated_at"}
