"""The ingest API: shipments and events, authentication, errors, limits."""

import copy
import json
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.db import OperationalError, connection
from django.test import Client

from shipments import keys, signals
from shipments.models import Shipment, StatusChange, TrackingEvent
from tests.conftest import T0, event
from tests.shipments.api_helpers import SHIPMENT, Api, is_problem, pointers, scan

# --- shipments -------------------------------------------------------------


def test_create_shipment_answers_201_with_its_tracking_url(api, brand):
    response = api.post("/shipments", SHIPMENT)
    assert response.status_code == 201, response.content
    body = response.json()
    shipment = Shipment.objects.get(brand=brand, tracking_number="LM100001")
    assert body["tracking_number"] == "LM100001"
    assert body["status"] == "pending"
    assert body["tracking_url"] == shipment.tracking_url
    assert body["tracking_url"].endswith(f"/t/{shipment.public_token}/")
    assert body["events"] == []
    assert shipment.recipient_phone == "+447700900123"
    assert shipment.destination_postcode == "SW1A 2AA"
    assert shipment.promised_window_start == T0.replace(hour=9)


def test_same_tracking_number_again_answers_200_with_the_existing_shipment(api, brand):
    first = api.post("/shipments", SHIPMENT).json()
    changed = copy.deepcopy(SHIPMENT)
    changed["recipient"]["name"] = "Somebody Else"
    again = api.post("/shipments", changed)
    assert again.status_code == 200
    assert again.json()["tracking_url"] == first["tracking_url"]
    assert again.json()["recipient"]["name"] == "Ada Lovelace"
    assert Shipment.objects.filter(brand=brand).count() == 1


def test_another_brand_can_use_the_same_tracking_number(api, other_api, brand, other_brand):
    mine = api.post("/shipments", SHIPMENT)
    theirs = other_api.post("/shipments", SHIPMENT)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["tracking_url"] != theirs.json()["tracking_url"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"recipient": {"phone": "07700 900123"}}, "#/recipient/phone"),
        ({"recipient": {"email": "not-an-email"}}, "#/recipient/email"),
        ({"recipient": {"timezone": "Mars/Olympus"}}, "#/recipient/timezone"),
        ({"destination": {"lat": 91}}, "#/destination/lat"),
        ({"destination": {"lng": "west"}}, "#/destination/lng"),
        ({"promised_window": {"start": "2026-11-26T09:00:00", "end": "2026-11-26T13:00:00Z"}}, None),
        ({"promised_window": {"start": "2026-11-26T13:00:00Z", "end": "2026-11-26T09:00:00Z"}}, None),
        ({"tracking_number": ""}, "#/tracking_number"),
        ({"tracking_number": 12}, "#/tracking_number"),
        ({"tracking_number": "AB/12"}, "#/tracking_number"),
        ({"tracking_number": "AB 12"}, "#/tracking_number"),
        ({"carrier": "x" * 65}, "#/carrier"),
    ],
)
def test_bad_shipment_fields_are_422_with_where(api, change, where):
    body = copy.deepcopy(SHIPMENT)
    for key, value in change.items():
        if isinstance(value, dict) and key in ("recipient", "destination"):
            body[key].update(value)
        else:
            body[key] = value
    problem = is_problem(api.post("/shipments", body), 422)
    if where:
        assert where in pointers(problem)
    else:
        assert any(p.startswith("#/promised_window") for p in pointers(problem))
    assert not Shipment.objects.exists()


def test_get_shipment_with_its_events_in_order(api, make_shipment, django_assert_max_num_queries):
    shipment = make_shipment(tracking_number="LM1")
    api.post("/events", {"events": [scan("LM1", "in_transit", "2026-11-26T07:00:00Z", "a")]})
    api.post("/events", {"events": [scan("LM1", "info_received", "2026-11-26T06:00:00Z", "b")]})
    # The key, then the shipment, its events and any open address note.
    with django_assert_max_num_queries(4):
        response = api.get("/shipments/LM1")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "in_transit"
    assert [e["external_id"] for e in body["events"]] == ["b", "a"]
    assert body["tracking_url"] == shipment.tracking_url


def test_unknown_and_other_brands_shipments_are_the_same_404(api, make_shipment, other_brand):
    make_shipment(tracking_number="THEIRS", for_brand=other_brand)
    theirs = is_problem(api.get("/shipments/THEIRS"), 404)
    nobody = is_problem(api.get("/shipments/NOBODY"), 404)
    assert theirs["type"] == nobody["type"]
    assert "THEIRS" not in json.dumps({k: v for k, v in theirs.items() if k not in ("detail", "instance")})


# --- events ----------------------------------------------------------------


def test_contract_example_is_accepted_and_changes_the_status(api, make_shipment):
    shipment = make_shipment(tracking_number="LM100001")
    body = {
        "events": [
            {
                "tracking_number": "LM100001",
                "status": "out_for_delivery",
                "occurred_at": "2026-11-26T08:02:00Z",
                "external_id": "scan-1",
                "carrier_code": "OFD",
                "description": "Out for delivery",
                "location": {"lat": 51.51, "lng": -0.12, "city": "London"},
            }
        ]
    }
    response = api.post("/events", body)
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "errors": 0,
        "results": [{"index": 0, "result": "accepted"}],
    }
    shipment.refresh_from_db()
    assert shipment.status == "out_for_delivery"
    stored = TrackingEvent.objects.get(shipment=shipment)
    assert (stored.carrier_code, stored.location_city, stored.location_lat) == ("OFD", "London", 51.51)
    assert StatusChange.objects.filter(shipment=shipment, new_status="out_for_delivery").count() == 1


def test_a_resent_event_is_a_duplicate(api, make_shipment):
    make_shipment(tracking_number="LM1")
    api.post("/events", {"events": [scan("LM1")]})
    response = api.post("/events", {"events": [scan("LM1"), scan("LM1")]})
    assert response.json()["duplicates"] == 2
    assert TrackingEvent.objects.count() == 1


def test_bad_items_are_errors_and_the_rest_are_written(api, make_shipment, other_brand):
    make_shipment(tracking_number="LM1")
    make_shipment(tracking_number="THEIRS", for_brand=other_brand)
    events = [
        scan("LM1", "in_transit", external_id="good-1"),
        scan("NOBODY", external_id="x1"),
        scan("THEIRS", external_id="x2"),
        scan("LM1", "teleported", external_id="x3"),
        scan("LM1", at="2026-11-26T08:02:00", external_id="x4"),
        scan("LM1", external_id="x5", location={"lat": 91, "lng": 0}),
        scan("LM1", external_id="x6", location={"lat": 0, "lng": -181}),
        scan("LM1", "out_for_delivery", "2026-11-26T09:00:00Z", external_id="good-2"),
    ]
    response = api.post("/events", {"events": events})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["errors"]) == (2, 0, 6)
    results = body["results"]
    assert [r["result"] for r in results] == ["accepted"] + ["error"] * 6 + ["accepted"]
    assert results[1]["error"]["status"] == results[2]["error"]["status"] == 404
    assert results[1]["error"]["pointer"] == "#/events/1/tracking_number"
    assert results[2]["error"] == {
        **results[1]["error"],
        "detail": results[2]["error"]["detail"],
        "pointer": results[2]["error"]["pointer"],
    }
    assert results[3]["error"]["pointer"] == "#/events/3/status"
    assert results[4]["error"]["pointer"] == "#/events/4/occurred_at"
    assert results[5]["error"]["pointer"] == "#/events/5/location/lat"
    assert results[6]["error"]["pointer"] == "#/events/6/location/lng"
    assert all(r["error"]["status"] == 422 for r in results[3:7])
    assert set(TrackingEvent.objects.values_list("external_id", flat=True)) == {"good-1", "good-2"}
    assert Shipment.objects.get(tracking_number="LM1").status == "out_for_delivery"
    assert Shipment.objects.get(tracking_number="THEIRS").events.count() == 0


def test_another_brands_key_changes_nothing_of_this_brands_shipment(other_api, make_shipment):
    shipment = make_shipment(tracking_number="LM1")
    response = other_api.post("/events", {"events": [scan("LM1", "delivered")]})
    assert response.json()["results"][0]["error"]["status"] == 404
    is_problem(other_api.get("/shipments/LM1"), 404)
    fresh = Shipment.objects.get(pk=shipment.pk)
    assert (fresh.status, fresh.version) == (shipment.status, shipment.version)
    assert not TrackingEvent.objects.exists()


@pytest.mark.parametrize("count", [0, 1001])
def test_batch_size_is_1_to_1000(api, make_shipment, count):
    make_shipment(tracking_number="LM1")
    problem = is_problem(api.post("/events", {"events": [scan("LM1", external_id=str(i)) for i in range(count)]}), 422)
    assert "#/events" in pointers(problem)
    assert not TrackingEvent.objects.exists()


def test_wrong_types_are_422_field_by_field(api):
    problem = is_problem(
        api.post(
            "/events",
            {
                "events": [
                    {"tracking_number": 5, "status": "in_transit", "occurred_at": "yesterday", "location": "here"}
                ]
            },
        ),
        422,
    )
    assert {"#/events/0/tracking_number", "#/events/0/occurred_at", "#/events/0/location"} <= pointers(problem)
    assert problem["type"].endswith("/validation-error")


@pytest.mark.parametrize(
    "raw", ['{"events": [', "not json", '{"events": [{"location": {"lat": NaN}}]}', "\xff\xfe", "[]", '"events"']
)
def test_bodies_that_are_not_json_objects_are_4xx_problems(api, raw):
    response = api.post("/events", raw=raw)
    assert response.status_code in (400, 422)
    is_problem(response, response.status_code)


def test_a_body_over_the_limit_is_413_before_it_is_read(api, settings, make_shipment):
    settings.API_MAX_BODY_BYTES = 1000
    make_shipment(tracking_number="LM1")
    body = {"events": [scan("LM1", external_id=str(i)) for i in range(20)]}
    problem = is_problem(api.post("/events", body), 413)
    assert problem["type"].endswith("/too-large")
    assert not TrackingEvent.objects.exists()


# An hour after its events, so that no alert (stuck) opens and is announced too.
@time_machine.travel(T0 + timedelta(hours=1), tick=False)
def test_a_batch_is_announced_once_after_commit_with_each_changed_shipment(
    api, make_shipment, django_capture_on_commit_callbacks
):
    make_shipment(tracking_number="LM1")
    make_shipment(tracking_number="LM2")
    heard = []

    def receiver(sender, changes, **kwargs):
        heard.append(changes)

    signals.shipments_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            api.post(
                "/events",
                {
                    "events": [
                        scan("LM1", "in_transit", "2026-11-26T07:00:00Z", "a"),
                        scan("LM1", "out_for_delivery", "2026-11-26T08:00:00Z", "b"),
                        scan("LM2", "in_transit", "2026-11-26T07:00:00Z", "c"),
                    ]
                },
            )
    finally:
        signals.shipments_changed.disconnect(receiver)
    assert len(heard) == 1
    by_shipment = {change.shipment_id: change for change in heard[0]}
    assert len(heard[0]) == 2 == len(by_shipment)
    lm1 = Shipment.objects.get(tracking_number="LM1")
    change = StatusChange.objects.get(shipment=lm1)
    assert (change.old_status, change.new_status) == ("pending", "out_for_delivery")
    assert by_shipment[lm1.pk] == signals.ShipmentChange(
        lm1.pk,
        lm1.version,
        change.pk,
        token=lm1.public_token,
        old_status="pending",
        status="out_for_delivery",
    )


# --- authentication ----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer ", "Bearer lmk_not-a-real-key", "Basic dXNlcjpwYXNz", "lmk_bare-key-without-scheme"],
)
def test_requests_without_a_live_key_are_401(client, brand, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/api/v1/shipments/LM1", **extra)
    is_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_is_refused(api, brand, make_shipment):
    make_shipment(tracking_number="LM1")
    assert api.get("/shipments/LM1").status_code == 200
    keys.revoke_api_key(api_key=brand.api_keys.get())
    is_problem(api.get("/shipments/LM1"), 401)


def test_keys_are_stored_hashed(api, brand):
    stored = brand.api_keys.get()
    assert api.key not in (stored.key_hash, stored.prefix)
    assert stored.key_hash == keys.hash_key(api.key)
    assert api.key.startswith(stored.prefix)


def test_csrf_does_not_apply_to_the_bearer_api(brand, make_shipment):
    make_shipment(tracking_number="LM1")
    strict = Api(Client(enforce_csrf_checks=True), keys.create_api_key(brand=brand)[1])
    assert strict.post("/events", {"events": [scan("LM1")]}).status_code == 200


# --- limits and outages --------------------------------------------------------


def test_rate_limit_per_key_is_429_with_retry_after(api, other_api, settings, make_shipment):
    settings.API_RATE_LIMIT = "2/60"
    make_shipment(tracking_number="LM1")
    assert api.get("/shipments/LM1").status_code == 200
    assert api.get("/shipments/LM1").status_code == 200
    response = api.get("/shipments/LM1")
    problem = is_problem(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60
    assert problem["type"].endswith("/rate-limited")
    # Another key has its own allowance.
    assert other_api.get("/shipments/LM1").status_code == 404


def test_an_unreachable_rate_limit_store_lets_requests_through(api, settings, make_shipment):
    settings.REDIS_URL = "redis://127.0.0.1:8349/0"  # nothing listens there
    settings.API_RATE_LIMIT = "1/60"
    make_shipment(tracking_number="LM1")
    assert [api.get("/shipments/LM1").status_code for _ in range(3)] == [200, 200, 200]


def test_database_down_is_503_with_retry_after(api):
    with mock.patch.object(connection, "ensure_connection", side_effect=OperationalError("connection refused")):
        response = api.get("/shipments/LM1")
    is_problem(response, 503)
    assert int(response["Retry-After"]) > 0


def test_database_lost_mid_batch_writes_nothing(api, make_shipment):
    shipment = make_shipment(tracking_number="LM1")
    make_shipment(tracking_number="LM2")

    def fail_on_shipment_update(execute, sql, params, many, context):
        if sql.startswith('UPDATE "shipments_shipment"'):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    batch = {"events": [scan("LM1", "in_transit", external_id="a"), scan("LM2", "in_transit", external_id="b")]}
    with connection.execute_wrapper(fail_on_shipment_update):
        response = api.post("/events", batch)
    is_problem(response, 503)
    assert not TrackingEvent.objects.exists()
    assert not StatusChange.objects.exists()
    shipment.refresh_from_db()
    assert shipment.status == "pending"
    # The client's retry then goes through whole.
    assert api.post("/events", batch).json()["accepted"] == 2


def test_api_docs_and_openapi_document_are_served(client):
    schema = client.get("/api/v1/openapi.json").json()
    for path in ["/api/v1/shipments", "/api/v1/events", "/api/v1/locations", "/api/v1/routes"]:
        assert path in schema["paths"]
    assert "application/problem+json" in schema["paths"]["/api/v1/events"]["post"]["responses"]["422"]["content"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert b"cdn." not in docs.content


def test_events_posted_one_by_one_or_in_a_batch_agree(api, make_shipment):
    make_shipment(tracking_number="ONE")
    make_shipment(tracking_number="ALL")
    story = [event("in_transit", 0), event("delivered", 30), event("out_for_delivery", 20), event("exception", 40)]
    as_json = [
        {"status": e.status, "occurred_at": e.occurred_at.isoformat(), "external_id": e.external_id} for e in story
    ]
    for item in as_json:
        api.post("/events", {"events": [{**item, "tracking_number": "ONE"}]})
    api.post("/events", {"events": [{**item, "tracking_number": "ALL"} for item in as_json]})
    one, all_ = Shipment.objects.get(tracking_number="ONE"), Shipment.objects.get(tracking_number="ALL")
    assert one.status == all_.status == "delivered"
    assert one.delivered_at == all_.delivered_at


@pytest.mark.parametrize(
    "when",
    ["0306-10-15T06:00:41+19:19", "1969-12-31T23:59:59Z", "2150-01-01T00:00:00Z", "0001-01-01T00:00:00-05:00"],
)
def test_timestamps_out_of_range_are_422_not_a_database_error(api, make_shipment, when):
    make_shipment(tracking_number="LM1")
    problem = is_problem(api.post("/events", {"events": [scan("LM1", at=when)]}), 422)
    assert "#/events/0/occurred_at" in pointers(problem)
    problem = is_problem(
        api.post("/locations", {"driver_ref": "d", "pings": [{"lat": 0, "lng": 0, "recorded_at": when}]}), 422
    )
    assert "#/pings/0/recorded_at" in pointers(problem)
    assert not TrackingEvent.objects.exists()


def test_timestamps_are_stored_in_utc(api, make_shipment):
    make_shipment(tracking_number="LM1")
    api.post("/events", {"events": [scan("LM1", at="2026-11-26T23:30:00-09:30")]})
    assert TrackingEvent.objects.get().occurred_at == T0.replace(day=27, hour=9)


@pytest.mark.parametrize(
    "raw",
    [
        '{"events": [{"tracking_number": "LM1", "status": "in_transit", "occurred_at": "2026-11-26T08:00:00Z", '
        '"description": "nul \\u0000 here"}]}',
        '{"driver_ref": "d", "pings": [{"lat": 0, "lng": 0, "recorded_at": "2026-11-26T08:00:00Z", '
        '"speed_mps": 1e999}]}',
    ],
)
def test_values_the_database_or_json_cannot_hold_are_4xx(api, make_shipment, raw):
    make_shipment(tracking_number="LM1")
    path = "/events" if "events" in raw else "/locations"
    response = api.post(path, raw=raw)
    assert response.status_code in (400, 422)
    is_problem(response, response.status_code)
    assert not TrackingEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_of_one_tracking_number_make_one_shipment(brand):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    import threading

    raw = keys.create_api_key(brand=brand)[1]
    barrier = threading.Barrier(4)
    statuses = []

    def create():
        try:
            barrier.wait()
            statuses.append(Api(Client(), raw).post("/shipments", SHIPMENT).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 200, 200, 201]
    assert Shipment.objects.filter(brand=brand).count() == 1


def test_every_problem_type_the_api_answers_is_documented_at_its_uri(api, client, make_shipment, settings):
    settings.API_RATE_LIMIT = "5/60"
    make_shipment(tracking_number="LM1")
    answers = [
        api.post("/events", raw="{"),
        api.post("/events", {"events": []}),
        api.get("/shipments/NOPE"),
        api.post("/events", {"events": [scan("NOPE"), scan("LM1", "teleported")]}),
        api.get("/shipments/LM1"),
        api.get("/shipments/LM1"),  # over the limit
    ]
    types = {r.json()["type"] for r in answers if r.status_code >= 400}
    types |= {item["error"]["type"] for r in answers if r.status_code == 200 for item in r.json().get("results", [])}
    types.discard("about:blank")
    assert len(types) == 5
    for uri in types:
        assert client.get(uri).status_code == 200, uri
    assert client.get("/api/v1/problems/no-such-thing").status_code == 404


def test_an_unknown_api_path_is_a_404_problem(api):
    body = is_problem(api.get("/no-such-endpoint"), 404)
    assert "/api/v1/docs" in body["detail"]


def test_a_wrong_method_is_a_405_problem_that_says_which_are_allowed(api):
    response = api.client.delete("/api/v1/events", **api.headers())
    body = is_problem(response, 405)
    assert "POST" in response["Allow"]
    assert "POST" in body["detail"]


def test_pages_outside_the_api_keep_their_own_404(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
