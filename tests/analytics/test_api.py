"""GET /api/v1/analytics: the key's brand only, the range checked, the
rollup's figures."""

import pytest

from tests.shipments.api_helpers import is_problem, pointers

pytestmark = pytest.mark.django_db


def test_the_brands_figures(api, rolled_up):
    response = api.get("/analytics?from=2026-11-26&to=2026-11-27")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["from"] == "2026-11-26" and body["to"] == "2026-11-27"
    assert body["on_time_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert body["first_attempt_rate"] == 0.8  # E too, on the 27th
    assert body["time_zone"] == "Europe/Paris"
    assert body["updated_at"]
    assert [row["day"] for row in body["by_day"]] == ["2026-11-26", "2026-11-27"]
    assert {row["driver_ref"] for row in body["by_driver"]} == {"", "drv-1", "drv-2"}
    assert {row["carrier"] for row in body["by_carrier"]} == {"acme-fleet", "other-carrier"}
    assert body["alerts_by_kind"] == {"failed_no_retry": 1, "late": 1, "stuck": 1}


def test_another_brands_key_sees_nothing_of_it(other_api, rolled_up):
    body = other_api.get("/analytics?from=2026-11-26&to=2026-11-27").json()
    assert body["parcels"] == 0
    assert body["on_time_rate"] is None and body["first_attempt_rate"] is None
    assert body["by_day"] == body["by_driver"] == body["by_carrier"] == []


def test_without_a_key(api, db):
    assert api.get("/analytics?from=2026-11-26&to=2026-11-27", key="").status_code == 401


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("from=2026-11-27&to=2026-11-26", "to"),
        ("from=2025-11-26&to=2026-11-27", "to"),  # 367 days
        ("from=2026-11-26", "to"),
        ("from=2026-13-01&to=2026-12-01", "from"),
        ("from=yesterday&to=2026-12-01", "from"),
        ("from=2026-11-26&to=2026-11-27&brand=other", "brand"),
    ],
)
def test_bad_ranges_are_422(api, db, query, parameter):
    problem = is_problem(api.get("/analytics?" + query), 422)
    assert parameter in pointers(problem)


def test_a_full_year_is_fine(api, db):
    assert api.get("/analytics?from=2025-11-27&to=2026-11-27").status_code == 200  # 366 days


def test_in_the_openapi_document(api, client, db):
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/analytics"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} == {"from", "to"}
    body = schema["components"]["schemas"]["AnalyticsOut"]["properties"]
    assert {"on_time_rate", "first_attempt_rate", "by_day", "by_driver", "by_carrier", "alerts_by_kind"} <= set(body)
