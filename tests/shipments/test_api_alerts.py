"""GET /api/v1/alerts: the brand's own alerts, newest first, paginated, in
the OpenAPI document; bad filters are problems; the admin's list of them is
scoped to the staff user's brands."""

from datetime import timedelta

from shipments.models import Alert, AlertState

from ..conftest import T0
from .admin_helpers import brand_staff
from .api_helpers import is_problem, pointers

HOUR = timedelta(hours=1)


def alert(shipment, kind, hours, **fields):
    return Alert.objects.create(shipment=shipment, kind=kind, opened_at=T0 + hours * HOUR, **fields)


def test_the_brands_alerts_newest_first_and_never_another_brands(api, make_shipment, other_brand):
    mine = make_shipment()
    theirs = make_shipment(tracking_number="OTHER1", for_brand=other_brand)
    alert(mine, "stuck", 1, detail={"status": "in_transit"})
    alert(mine, "late", 2, state=AlertState.RESOLVED, resolved_at=T0 + 3 * HOUR)
    alert(theirs, "late", 3)
    response = api.get("/alerts")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2
    assert [(item["kind"], item["state"]) for item in body["items"]] == [("late", "resolved"), ("stuck", "open")]
    late, stuck = body["items"]
    assert late["tracking_number"] == mine.tracking_number
    assert late["resolved_at"] == "2026-11-26T11:00:00Z"
    assert stuck == {
        "kind": "stuck",
        "state": "open",
        "tracking_number": mine.tracking_number,
        "opened_at": "2026-11-26T09:00:00Z",
        "resolved_at": None,
        "detail": {"status": "in_transit"},
    }


def test_filters_by_state_and_kind(api, shipment):
    alert(shipment, "stuck", 1)
    alert(shipment, "late", 2, state=AlertState.RESOLVED, resolved_at=T0 + 3 * HOUR)
    alert(shipment, "late", 4)
    assert [i["kind"] for i in api.get("/alerts?state=open").json()["items"]] == ["late", "stuck"]
    assert [i["state"] for i in api.get("/alerts?kind=late").json()["items"]] == ["open", "resolved"]
    assert api.get("/alerts?state=resolved&kind=stuck").json() == {"items": [], "count": 0}


def test_paginated_like_ninjas_default(api, shipment):
    for hours in range(5):
        alert(shipment, "stuck", hours, state=AlertState.RESOLVED, resolved_at=T0 + hours * HOUR)
    page = api.get("/alerts?limit=2&offset=1").json()
    assert page["count"] == 5
    assert [i["opened_at"] for i in page["items"]] == ["2026-11-26T11:00:00Z", "2026-11-26T10:00:00Z"]


def test_a_bad_state_or_kind_is_a_problem_naming_it(api):
    assert pointers(is_problem(api.get("/alerts?state=closed"), 422)) == {"state"}
    assert pointers(is_problem(api.get("/alerts?kind=lost"), 422)) == {"kind"}


def test_an_absurd_page_is_a_problem_not_a_server_error(api):
    # As schemathesis found: an offset past what the database takes was a 500.
    assert pointers(is_problem(api.get("/alerts?offset=91287472260000000000"), 422)) == {"offset"}
    assert pointers(is_problem(api.get("/alerts?limit=57088254324945376"), 422)) == {"limit"}
    assert api.get("/alerts?limit=500&offset=1000000000").status_code == 200


def test_an_unknown_query_parameter_is_a_problem_naming_it(api):
    # A misspelt filter (?status=open) must not quietly list every alert.
    assert pointers(is_problem(api.get("/alerts?status=open"), 422)) == {"status"}
    assert is_problem(api.get("/alerts?="), 422)


def test_needs_a_key(api):
    is_problem(api.get("/alerts", key=""), 401)


def test_in_the_openapi_document(client):
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/alerts"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"state", "kind", "limit", "offset"}
    assert "422" in operation["responses"]


def test_the_admin_lists_only_the_staff_users_brands_alerts_open_and_oldest_first(
    client, brand, other_brand, make_shipment
):
    mine = make_shipment(tracking_number="MINE1")
    theirs = make_shipment(tracking_number="THEIRS1", for_brand=other_brand)
    newer = alert(mine, "late", 5)
    older = alert(mine, "stuck", 1)
    resolved = alert(mine, "carrier_exception", 0, state=AlertState.RESOLVED, resolved_at=T0 + HOUR)
    alert(theirs, "stuck", 0)
    client.force_login(brand_staff(brand))
    response = client.get("/admin/shipments/alert/")
    assert response.status_code == 200
    # The queue shows what is open unless asked for the rest.
    assert [a.pk for a in response.context["cl"].result_list] == [older.pk, newer.pk]
    everything = client.get("/admin/shipments/alert/?state=all")
    assert [a.pk for a in everything.context["cl"].result_list] == [older.pk, newer.pk, resolved.pk]
    assert "THEIRS1" not in response.content.decode()
    filtered = client.get("/admin/shipments/alert/?kind__exact=late&state__exact=open")
    assert [a.pk for a in filtered.context["cl"].result_list] == [newer.pk]
    # Another brand's alert is not there to open, and nothing can be changed.
    other = Alert.objects.get(shipment=theirs)
    assert client.get(f"/admin/shipments/alert/{other.pk}/change/").status_code in (302, 404)
    assert client.post(f"/admin/shipments/alert/{older.pk}/change/", {}).status_code == 403
    assert client.get("/admin/shipments/alert/add/").status_code == 403


def test_a_page_of_alerts_reads_a_bounded_number_of_queries(api, make_shipment, django_assert_max_num_queries):
    for hours in range(10):
        alert(make_shipment(), "stuck", hours)
    with django_assert_max_num_queries(4):
        assert api.get("/alerts").json()["count"] == 10
