"""Carrier webhooks: each format's signature, checked before the body is
read, and its events recorded by the same rules as the API's."""

import base64
import hashlib
import hmac
import json
import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from standardwebhooks.webhooks import Webhook

from shipments import keys
from shipments.models import Shipment, TrackingEvent
from tests.shipments.api_helpers import is_problem

FIXTURES = Path(__file__).parent.parent / "fixtures" / "webhooks"
EASYPOST_SECRET = "easypost-sécret-ﬁ"  # normalised to NFKD before use, as EasyPost does
AFTERSHIP_SECRET = "aftership-secret"


def fixture(name) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def carrier_brand(brand):
    brand.inbound_webhook_secret = keys.new_webhook_secret()
    brand.inbound_webhook_previous_secret = keys.new_webhook_secret()
    brand.easypost_webhook_secret = EASYPOST_SECRET
    brand.aftership_webhook_secret = AFTERSHIP_SECRET
    brand.save()
    return brand


def post(client, source, body: bytes, headers: dict, slug="acme"):
    extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    return client.post(f"/api/v1/webhooks/{source}/{slug}", body, content_type="application/json", **extra)


def standard_headers(secret, body: bytes, *, msg_id="msg_1", timestamp=None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{msg_id}.{timestamp}.".encode() + body
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{signature}"}


def easypost_headers(secret, body):
    key = unicodedata.normalize("NFKD", secret).encode()
    return {"X-Hmac-Signature": "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()}


def aftership_headers(secret, body):
    return {
        "aftership-hmac-sha256": base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    }


# --- generic (Standard Webhooks) ---------------------------------------------


def test_generic_signed_webhook_records_its_events(client, carrier_brand, make_shipment):
    shipment = make_shipment(tracking_number="LM100001")
    body = fixture("generic_events.json")
    response = post(client, "generic", body, standard_headers(carrier_brand.inbound_webhook_secret, body))
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 2
    shipment.refresh_from_db()
    assert shipment.status == "out_for_delivery"
    assert set(shipment.events.values_list("source", flat=True)) == {"carrier"}
    # Redelivered, the same webhook changes nothing.
    again = post(client, "generic", body, standard_headers(carrier_brand.inbound_webhook_secret, body))
    assert again.json()["duplicates"] == 2


def test_generic_signature_from_the_standardwebhooks_library_verifies(client, carrier_brand, make_shipment):
    make_shipment(tracking_number="LM100001")
    body = fixture("generic_events.json")
    now = int(time.time())
    signature = Webhook(carrier_brand.inbound_webhook_secret).sign(
        "msg_lib", datetime.fromtimestamp(now, UTC), body.decode()
    )
    headers = {"webhook-id": "msg_lib", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert post(client, "generic", body, headers).status_code == 200


def test_generic_item_errors_point_into_the_envelope(client, carrier_brand):
    body = fixture("generic_events.json")
    response = post(client, "generic", body, standard_headers(carrier_brand.inbound_webhook_secret, body))
    assert response.json()["results"][1]["error"]["pointer"] == "#/data/events/1/tracking_number"


def test_generic_accepts_the_previous_secret_during_rotation(client, carrier_brand, make_shipment):
    make_shipment(tracking_number="LM100001")
    body = fixture("generic_events.json")
    response = post(client, "generic", body, standard_headers(carrier_brand.inbound_webhook_previous_secret, body))
    assert response.status_code == 200


@pytest.mark.parametrize("case", ["tampered", "wrong_secret", "old", "future", "missing", "garbled"])
def test_generic_bad_signatures_are_refused_and_nothing_is_read(client, carrier_brand, make_shipment, case):
    make_shipment(tracking_number="LM100001")
    body = fixture("generic_events.json")
    secret = carrier_brand.inbound_webhook_secret
    headers = standard_headers(secret, body)
    if case == "tampered":
        body = body.replace(b"out_for_delivery", b"delivered")
    elif case == "wrong_secret":
        headers = standard_headers(keys.new_webhook_secret(), body)
    elif case == "old":
        headers = standard_headers(secret, body, timestamp=int(time.time()) - 6 * 60)
    elif case == "future":
        headers = standard_headers(secret, body, timestamp=int(time.time()) + 6 * 60)
    elif case == "missing":
        del headers["webhook-signature"]
    elif case == "garbled":
        headers["webhook-signature"] = "v1-not-base64!!"
    problem = is_problem(post(client, "generic", body, headers), 401)
    assert problem["type"].endswith("/invalid-signature")
    assert not TrackingEvent.objects.exists()


def test_generic_replay_after_the_tolerance_is_refused(client, carrier_brand, make_shipment):
    make_shipment(tracking_number="LM100001")
    body = fixture("generic_events.json")
    headers = standard_headers(carrier_brand.inbound_webhook_secret, body)
    with time_machine.travel(time.time() + 5 * 60 + 5, tick=False):
        is_problem(post(client, "generic", body, headers), 401)
    assert not TrackingEvent.objects.exists()


def test_signed_but_malformed_generic_body_is_422_or_400(client, carrier_brand):
    secret = carrier_brand.inbound_webhook_secret
    for body, status in [(b'{"type": "x", "data": {"events": "no"}}', 422), (b"{nope", 400)]:
        is_problem(post(client, "generic", body, standard_headers(secret, body)), status)


def test_unknown_brand_answers_as_a_bad_signature_and_unknown_source_is_404(client, carrier_brand):
    # A brand's slug is not revealed by its webhook URL: nobody holds an
    # unknown brand's secret, so its answer is the bad signature's.
    body = fixture("generic_events.json")
    headers = standard_headers(carrier_brand.inbound_webhook_secret, body)
    assert is_problem(post(client, "generic", body, headers, slug="nobody"), 401)["type"].endswith("/invalid-signature")
    assert is_problem(post(client, "pigeon", body, headers), 404)["type"].endswith("/unknown-source")


def test_a_brand_without_a_secret_refuses_webhooks(client, brand):
    body = fixture("generic_events.json")
    is_problem(post(client, "generic", body, standard_headers(keys.new_webhook_secret(), body)), 401)
    is_problem(post(client, "easypost", body, easypost_headers("", body)), 401)


def test_another_brands_secret_cannot_post_to_this_brand(client, carrier_brand, other_brand, make_shipment):
    make_shipment(tracking_number="LM100001")
    other_brand.inbound_webhook_secret = keys.new_webhook_secret()
    other_brand.save()
    body = fixture("generic_events.json")
    is_problem(post(client, "generic", body, standard_headers(other_brand.inbound_webhook_secret, body)), 401)


# --- EasyPost ------------------------------------------------------------------


def test_easypost_tracker_updated_is_recorded_with_raw_codes(client, carrier_brand, make_shipment):
    shipment = make_shipment(tracking_number="EZ4000000004")
    body = fixture("easypost_tracker_updated.json")
    response = post(client, "easypost", body, easypost_headers(EASYPOST_SECRET, body))
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 4
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    delivered = shipment.events.get(status="delivered")
    assert delivered.carrier_code == "delivered/arrived_at_destination"
    assert delivered.description == "Delivered, In/At Mailbox"
    assert delivered.location_city == "CHARLESTON"
    assert delivered.source == "carrier"
    assert list(shipment.events.order_by("occurred_at").values_list("status", flat=True)) == [
        "info_received",
        "in_transit",
        "out_for_delivery",
        "delivered",
    ]
    assert post(client, "easypost", body, easypost_headers(EASYPOST_SECRET, body)).json()["duplicates"] == 4


@pytest.mark.parametrize("case", ["tampered", "wrong_secret", "missing", "unnormalised_secret"])
def test_easypost_bad_signatures_are_refused(client, carrier_brand, make_shipment, case):
    make_shipment(tracking_number="EZ4000000004")
    body = fixture("easypost_tracker_updated.json")
    headers = easypost_headers(EASYPOST_SECRET, body)
    if case == "tampered":
        body = body.replace(b'"delivered"', b'"return_to_sender"', 1)
    elif case == "wrong_secret":
        headers = easypost_headers("another-secret", body)
    elif case == "missing":
        headers = {}
    elif case == "unnormalised_secret":
        key = EASYPOST_SECRET.encode()
        headers = {"X-Hmac-Signature": "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()}
    is_problem(post(client, "easypost", body, headers), 401)
    assert not TrackingEvent.objects.exists()


def test_easypost_events_of_other_kinds_are_acknowledged_and_ignored(client, carrier_brand):
    body = json.dumps({"object": "Event", "description": "batch.created", "result": {}}).encode()
    response = post(client, "easypost", body, easypost_headers(EASYPOST_SECRET, body))
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 0, "errors": 0, "results": []}


def test_easypost_unknown_tracking_code_is_an_item_error(client, carrier_brand):
    body = fixture("easypost_tracker_updated.json")
    response = post(client, "easypost", body, easypost_headers(EASYPOST_SECRET, body))
    assert response.json()["errors"] == 4
    assert {r["error"]["status"] for r in response.json()["results"]} == {404}
    assert response.json()["results"][3]["error"]["pointer"] == "#/result/tracking_details/3/tracking_number"


# --- AfterShip -------------------------------------------------------------------


def test_aftership_tracking_update_is_recorded(client, carrier_brand, make_shipment):
    shipment = make_shipment(tracking_number="1Z999AA10123456784")
    body = fixture("aftership_tracking_update.json")
    response = post(client, "aftership", body, aftership_headers(AFTERSHIP_SECRET, body))
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 3
    shipment.refresh_from_db()
    assert (shipment.status, shipment.substatus) == ("failed_attempt", "recipient_unavailable")
    attempt = shipment.events.get(status="failed_attempt")
    assert attempt.carrier_code == "AttemptFail_001"
    assert attempt.description.startswith("The receiver was not available")
    # The checkpoint without an offset is placed by AfterShip's own UTC time.
    ofd = shipment.events.get(status="out_for_delivery")
    assert ofd.occurred_at.isoformat() == "2026-11-26T06:10:00+00:00"


@pytest.mark.parametrize("case", ["tampered", "wrong_secret", "missing", "hex_instead_of_base64"])
def test_aftership_bad_signatures_are_refused(client, carrier_brand, make_shipment, case):
    make_shipment(tracking_number="1Z999AA10123456784")
    body = fixture("aftership_tracking_update.json")
    headers = aftership_headers(AFTERSHIP_SECRET, body)
    if case == "tampered":
        body = body.replace(b'"AttemptFail"', b'"Delivered"')
    elif case == "wrong_secret":
        headers = aftership_headers("not-the-secret", body)
    elif case == "missing":
        headers = {}
    elif case == "hex_instead_of_base64":
        headers = {"aftership-hmac-sha256": hmac.new(AFTERSHIP_SECRET.encode(), body, hashlib.sha256).hexdigest()}
    is_problem(post(client, "aftership", body, headers), 401)
    assert not TrackingEvent.objects.exists()


def test_a_webhook_body_over_the_limit_is_413(client, carrier_brand, settings):
    settings.API_MAX_BODY_BYTES = 100
    body = fixture("aftership_tracking_update.json")
    is_problem(post(client, "aftership", body, aftership_headers(AFTERSHIP_SECRET, body)), 413)
    assert Shipment.objects.count() == 0
