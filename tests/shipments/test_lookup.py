"""/track/: look a parcel up by tracking number and postcode or email."""

import re

import pytest
from django.core.cache import cache

from shipments.views import LOOKUP_LIMIT

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_limits():
    cache.clear()
    yield
    cache.clear()


def look_up(client, number, postcode_or_email, address="10.0.0.1"):
    return client.post(
        "/track/",
        {"tracking_number": number, "postcode_or_email": postcode_or_email},
        REMOTE_ADDR=address,
        HTTP_ACCEPT_LANGUAGE="en",
    )


def without_tokens(response) -> str:
    html = response.content.decode()
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    return re.sub(r'nonce="[^"]+"', "", html)


def test_form_renders(client):
    response = client.get("/track/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert 'name="tracking_number"' in response.content.decode()
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("postcode", ["SW1A 2AA", "sw1a2aa", " Sw1A  2aA "])
def test_matching_postcode_redirects_to_the_tracking_page(client, shipment, postcode):
    response = look_up(client, shipment.tracking_number, postcode)
    assert response.status_code == 303
    assert response["Location"] == shipment.get_absolute_url()


def test_matching_email_redirects_too(client, shipment):
    response = look_up(client, shipment.tracking_number.lower(), "ADA@example.com")
    assert response.status_code == 303
    assert response["Location"] == shipment.get_absolute_url()


def test_unknown_number_and_wrong_postcode_get_the_same_answer(client, shipment):
    unknown = look_up(client, "NOSUCH123", "SW1A 2AA")
    wrong_postcode = look_up(client, shipment.tracking_number, "E1 6AN")
    wrong_email = look_up(client, shipment.tracking_number, "someone@example.com")
    assert unknown.status_code == wrong_postcode.status_code == wrong_email.status_code == 200
    assert "We could not find a parcel with those details." in unknown.content.decode()
    # Same page, apart from the echoed input.
    assert without_tokens(unknown).replace("NOSUCH123", "X") == without_tokens(wrong_postcode).replace(
        shipment.tracking_number, "X"
    ).replace("E1 6AN", "SW1A 2AA")
    assert shipment.get_absolute_url() not in wrong_postcode.content.decode()


def test_empty_fields_are_form_errors(client):
    response = look_up(client, "", "")
    assert response.status_code == 200
    assert response.content.decode().count('aria-invalid="true"') == 2


def test_attempts_are_limited_per_client(client, shipment):
    for _ in range(LOOKUP_LIMIT):
        assert look_up(client, "NOSUCH", "X1").status_code == 200
    limited = look_up(client, shipment.tracking_number, "SW1A 2AA")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert "Too many attempts" in limited.content.decode()
    # Even the right answer is refused while limited: guessing can't go on.
    assert shipment.get_absolute_url() not in limited.content.decode()
    # Another client is not affected.
    other = look_up(client, shipment.tracking_number, "SW1A 2AA", address="10.0.0.2")
    assert other.status_code == 303
