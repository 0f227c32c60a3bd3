"""Carrier webhooks: the signature is checked before a request counts
against the brand's rate limit, and the URLs don't tell which brands exist."""

import pytest

from shipments import keys
from tests.shipments.test_api_webhooks import (
    AFTERSHIP_SECRET,
    EASYPOST_SECRET,
    aftership_headers,
    easypost_headers,
    fixture,
    post,
    standard_headers,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_limits")]


@pytest.fixture
def carrier_brand(brand):
    brand.inbound_webhook_secret = keys.new_webhook_secret()
    brand.easypost_webhook_secret = EASYPOST_SECRET
    brand.aftership_webhook_secret = AFTERSHIP_SECRET
    brand.save()
    return brand


def test_unsigned_requests_do_not_use_up_the_carriers_allowance(client, carrier_brand, make_shipment, settings):
    settings.API_RATE_LIMIT = "5/60"
    make_shipment(tracking_number="LM100001")
    body = fixture("generic_events.json")
    forged = standard_headers(keys.new_webhook_secret(), body)
    # Well past the limit: the attack sent 1,200; what counts is "more than allowed".
    refused = [post(client, "generic", body, forged).status_code for _ in range(12)]
    assert refused == [401] * 12
    unsigned = [post(client, "generic", body, {}).status_code for _ in range(3)]
    assert unsigned == [401] * 3

    signed = post(client, "generic", body, standard_headers(carrier_brand.inbound_webhook_secret, body))
    assert signed.status_code == 200, signed.content
    assert signed.json()["accepted"] == 2


def test_signed_requests_are_still_limited(client, carrier_brand, make_shipment, settings):
    settings.API_RATE_LIMIT = "5/60"
    make_shipment(tracking_number="LM100001")
    body = fixture("generic_events.json")
    statuses = [
        post(
            client, "generic", body, standard_headers(carrier_brand.inbound_webhook_secret, body, msg_id=f"m{n}")
        ).status_code
        for n in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    limited = post(client, "generic", body, standard_headers(carrier_brand.inbound_webhook_secret, body))
    assert 1 <= int(limited["Retry-After"]) <= 60


@pytest.mark.parametrize(
    ("source", "sign"),
    [
        ("generic", lambda body: standard_headers(keys.new_webhook_secret(), body)),
        ("generic", lambda body: {}),
        ("easypost", lambda body: easypost_headers("not-the-secret", body)),
        ("easypost", lambda body: {}),
        ("aftership", lambda body: aftership_headers("not-the-secret", body)),
    ],
)
def test_an_unknown_brand_answers_exactly_like_a_bad_signature(client, carrier_brand, other_brand, source, sign):
    body = fixture("generic_events.json")
    headers = sign(body)
    known = post(client, source, body, headers, slug=carrier_brand.slug)
    unknown = post(client, source, body, headers, slug="no-such-brand")
    # A brand that exists but takes no webhooks of this source (no secret).
    unconfigured = post(client, source, body, headers, slug=other_brand.slug)
    assert known.status_code == unknown.status_code == unconfigured.status_code == 401
    # Byte for byte, apart from the problem's "instance": the path asked for.
    bodies = [
        r.content.replace(slug.encode(), b"SLUG")
        for r, slug in [(known, "acme"), (unknown, "no-such-brand"), (unconfigured, "other")]
    ]
    assert bodies[0] == bodies[1] == bodies[2]
    assert unknown.json()["instance"].endswith("/no-such-brand")
    assert known["Content-Type"] == unknown["Content-Type"] == unconfigured["Content-Type"]


def test_an_unknown_source_is_still_404(client, carrier_brand):
    body = fixture("generic_events.json")
    assert post(client, "pigeon", body, {}).status_code == 404
