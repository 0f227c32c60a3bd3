"""Who a request is counted as (tracking_portal/clients.py)."""

import pytest
from django.test import RequestFactory

from tracking_portal.clients import client_address, client_key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::"),
        ("2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("", None),
        ("not-an-address", None),
    ],
)
def test_an_ipv6_client_is_its_64_and_an_ipv4_one_its_address(address, key):
    assert client_key(address) == key


def test_the_address_is_the_peer_never_a_header():
    request = RequestFactory().get("/", REMOTE_ADDR="2001:db8::5", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_address(request) == "2001:db8::"


@pytest.mark.django_db
def test_rotating_through_one_64_does_not_get_past_the_look_up_limit(client):
    from pages.lookup import LOOKUP_LIMIT
    from shipments import limiter

    limiter.reset()
    try:
        answers = [
            client.post(
                "/track/",
                {"tracking_number": f"NOSUCH{n}", "postcode_or_email": "SW1A 2AA"},
                REMOTE_ADDR=f"2001:db8:7:7::{n + 1:x}",
            ).status_code
            for n in range(LOOKUP_LIMIT + 1)
        ]
    finally:
        limiter.reset()
    assert answers[:LOOKUP_LIMIT] == [200] * LOOKUP_LIMIT and answers[-1] == 429
