"""Helpers for the API tests: a client that speaks JSON with a brand's key."""

import json


class Api:
    def __init__(self, client, key: str):
        self.client = client
        self.key = key

    def headers(self, key=None, **extra):
        key = self.key if key is None else key
        return {**({"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}), **extra}

    def post(self, path, body=None, *, raw=None, key=None, content_type="application/json", **extra):
        data = raw if raw is not None else json.dumps(body)
        return self.client.post("/api/v1" + path, data, content_type=content_type, **self.headers(key, **extra))

    def get(self, path, *, key=None, **extra):
        return self.client.get("/api/v1" + path, **self.headers(key, **extra))


def is_problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    return body


def pointers(problem):
    return {error.get("pointer") or error.get("parameter") for error in problem.get("errors", [])}


SHIPMENT = {
    "tracking_number": "LM100001",
    "carrier": "acme-fleet",
    "order_ref": "ORD-1001",
    "recipient": {
        "name": "Ada Lovelace",
        "phone": "+447700900123",
        "email": "ada@example.com",
        "language": "en",
        "timezone": "Europe/London",
    },
    "destination": {
        "line1": "1 Example Street",
        "city": "London",
        "postcode": "SW1A 2AA",
        "country": "GB",
        "lat": 51.5034,
        "lng": -0.1276,
    },
    "promised_window": {"start": "2026-11-26T09:00:00Z", "end": "2026-11-26T13:00:00Z"},
}


def scan(tracking_number, status="out_for_delivery", at="2026-11-26T08:02:00Z", external_id="scan-1", **extra):
    return {
        "tracking_number": tracking_number,
        "status": status,
        "occurred_at": at,
        "external_id": external_id,
        **extra,
    }
