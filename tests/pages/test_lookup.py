"""/track/ and /track/<brand_slug>/: look a parcel up by tracking number and
postcode or email, never landing on another brand's parcel."""

import re

import pytest
from django.test import Client

from pages.lookup import LOOKUP_LIMIT

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_limits")]


def look_up(client, number, postcode_or_email, address="10.0.0.1", path="/track/"):
    return client.post(
        path,
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
    for n in range(LOOKUP_LIMIT):
        assert look_up(client, f"NOSUCH{n}", "X1").status_code == 200
    limited = look_up(client, shipment.tracking_number, "SW1A 2AA")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert "Too many attempts" in limited.content.decode()
    # Even the right answer is refused while limited: guessing can't go on.
    assert shipment.get_absolute_url() not in limited.content.decode()
    # Another client is not affected.
    other = look_up(client, shipment.tracking_number, "SW1A 2AA", address="10.0.0.2")
    assert other.status_code == 303


# --- one brand's look-up, and several brands' parcels -----------------------


@pytest.fixture
def squatted(brand, other_brand, make_shipment):
    """Brand A ("acme") created brand B's tracking number with B's postcode."""
    theirs = make_shipment(tracking_number="OC123456", for_brand=other_brand, destination_postcode="E1 6AN")
    squat = make_shipment(tracking_number="OC123456", for_brand=brand, destination_postcode="E1 6AN")
    return theirs, squat


def test_a_brands_look_up_finds_that_brands_parcel_only(client, squatted):
    theirs, squat = squatted
    response = look_up(client, "OC123456", "E1 6AN", path="/track/other/")
    assert response.status_code == 303
    assert response["Location"] == theirs.get_absolute_url()
    # A's own look-up finds A's parcel; neither finds the other's.
    assert look_up(client, "OC123456", "E1 6AN", path="/track/acme/")["Location"] == squat.get_absolute_url()


def test_a_brands_look_up_does_not_find_another_brands_parcel(client, shipment, other_brand):
    response = look_up(client, shipment.tracking_number, "SW1A 2AA", path="/track/other/")
    assert response.status_code == 200
    assert "We could not find a parcel with those details." in response.content.decode()
    assert shipment.public_token not in response.content.decode()


def test_the_global_look_up_asks_which_brand_instead_of_picking_one(client, squatted):
    theirs, squat = squatted
    response = look_up(client, "oc123456", "e16an")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Which company is your parcel from?" in html
    # Both brands by name, each choice through that brand's own look-up...
    assert "Acme Parcels" in html and "Other Co" in html
    assert 'action="/track/other/"' in html and 'action="/track/acme/"' in html
    # ...and nothing of either parcel.
    assert theirs.public_token not in html and squat.public_token not in html
    assert "/t/" not in html

    choice = re.search(r'<form method="post" action="/track/other/".*?</form>', html, re.S).group(0)
    fields = dict(re.findall(r'name="(tracking_number|postcode_or_email)" value="([^"]*)"', choice))
    chosen = client.post("/track/other/", fields, REMOTE_ADDR="10.0.0.1")
    assert chosen.status_code == 303
    assert chosen["Location"] == theirs.get_absolute_url()


def test_one_match_among_brands_still_redirects(client, brand, other_brand, make_shipment):
    theirs = make_shipment(tracking_number="TWIN1", for_brand=other_brand, destination_postcode="E1 6AN")
    ours = make_shipment(tracking_number="TWIN1", for_brand=brand, destination_postcode="SW1A 2AA")
    assert look_up(client, "TWIN1", "E1 6AN")["Location"] == theirs.get_absolute_url()
    assert look_up(client, "TWIN1", "SW1A 2AA")["Location"] == ours.get_absolute_url()
    # Both have the same recipient email: that is a choice again.
    assert look_up(client, "TWIN1", "ada@example.com").status_code == 200


def test_a_brands_look_up_wears_the_brands_header(client, brand):
    brand.primary_colour = "#123456"
    brand.save()
    response = client.get("/track/acme/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme Parcels" in html
    assert "--brand: #123456" in html
    assert 'action="/track/acme/"' in html
    assert 'href="/track/acme/?lang=es"' in html


def test_an_unknown_brand_is_the_not_found_page_as_a_404(client, shipment):
    page = client.get("/track/no-such-brand/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 404
    assert "We could not find a parcel with those details." in page.content.decode()
    posted = look_up(client, shipment.tracking_number, "SW1A 2AA", path="/track/no-such-brand/")
    assert posted.status_code == 404
    assert shipment.public_token not in posted.content.decode()
    # The same page as a miss on the look-up across brands, apart from the status.
    miss = look_up(client, "NOSUCH123", "SW1A 2AA")
    assert without_tokens(posted).replace(shipment.tracking_number, "X") == without_tokens(miss).replace(
        "NOSUCH123", "X"
    )


def test_unknown_number_and_wrong_postcode_do_the_same_queries(client, shipment, django_assert_num_queries):
    with django_assert_num_queries(1) as unknown:
        look_up(client, "NOSUCH123", "SW1A 2AA")
    with django_assert_num_queries(1) as wrong:
        look_up(client, shipment.tracking_number, "E1 6AN")
    assert unknown.captured_queries[0]["sql"].replace("NOSUCH123", "X") == wrong.captured_queries[0]["sql"].replace(
        shipment.tracking_number, "X"
    )


def test_the_choice_and_the_limits_are_translated(client, squatted):
    response = client.post(
        "/track/?lang=es", {"tracking_number": "OC123456", "postcode_or_email": "E1 6AN"}, REMOTE_ADDR="10.0.0.3"
    )
    assert "¿De qué empresa es tu paquete?" in response.content.decode()
    for n in range(LOOKUP_LIMIT):
        look_up(client, "OC123456", "X1", address=f"10.0.9.{n}")
    # The language chosen above stays with the visitor (its cookie).
    limited = client.post("/track/acme/", {"tracking_number": "OC123456", "postcode_or_email": "E1 6AN"})
    assert limited.status_code == 429
    assert "Demasiados intentos con este número de seguimiento." in limited.content.decode()
    fresh = Client().post(
        "/track/acme/", {"tracking_number": "OC123456", "postcode_or_email": "E1 6AN"}, HTTP_ACCEPT_LANGUAGE="de"
    )
    assert "Zu viele Versuche mit dieser Sendungsnummer." in fresh.content.decode()


def test_look_up_answers_stay_out_of_search_engines(client, brand):
    for response in (client.get("/track/"), client.get("/track/acme/"), look_up(client, "NOSUCH", "X1")):
        assert response["X-Robots-Tag"] == "noindex, nofollow"


def test_the_choice_works_with_csrf_checked(squatted):
    theirs, _squat = squatted
    browser = Client(enforce_csrf_checks=True)
    form = browser.get("/track/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    fields = {"csrfmiddlewaretoken": token, "tracking_number": "OC123456", "postcode_or_email": "E1 6AN"}
    choice_page = browser.post("/track/", fields).content.decode()
    choice = re.search(r'<form method="post" action="/track/other/".*?</form>', choice_page, re.S).group(0)
    chosen = browser.post("/track/other/", dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', choice)))
    assert chosen.status_code == 303
    assert chosen["Location"] == theirs.get_absolute_url()
