"""/track/ and /track/<brand_slug>/ with an order reference: every parcel of
the order, never another brand's, with the look-up's rules and limits."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from pages.lookup import FAILED_LOOKUPS_PER_NUMBER, find_for_lookup
from shipments import services
from shipments.models import Shipment
from shipments.statuses import Status
from tests.conftest import event

from .test_lookup import look_up, without_tokens

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_limits")]


def links(response) -> set[str]:
    return set(re.findall(r'href="(/t/[^"]+/)"', response.content.decode()))


@pytest.fixture
def order(make_shipment):
    """Three parcels of order ORD-1001, one of them out for delivery."""
    parcels = [make_shipment(order_ref="ORD-1001") for _ in range(3)]
    services.record_event(shipment_id=parcels[0].pk, event=event(Status.OUT_FOR_DELIVERY))
    return parcels


@pytest.mark.parametrize("given", ["SW1A 2AA", "sw1a2aa", "ADA@example.com"])
def test_an_order_reference_shows_every_parcel_of_the_order(client, order, given):
    response = look_up(client, "ORD-1001", given)
    assert response.status_code == 200
    html = response.content.decode()
    assert links(response) == {parcel.get_absolute_url() for parcel in order}
    for parcel in order:
        assert parcel.tracking_number in html
    assert "Out for delivery" in html and "Order ORD-1001 from Acme Parcels comes in 3 parcels" in html
    assert response["Cache-Control"] == "no-store"
    # Nothing of the recipient (the links' random tokens could spell anything).
    words = re.sub(r'href="/t/[^"]+/"', "", without_tokens(response))
    assert "Ada" not in words and "Example Street" not in words


def test_the_brands_own_look_up_shows_the_order_too(client, order):
    response = look_up(client, "ord-1001", "SW1A 2AA", path="/track/acme/")
    assert response.status_code == 200
    assert links(response) == {parcel.get_absolute_url() for parcel in order}


def test_an_order_of_one_parcel_goes_to_its_page(client, make_shipment):
    parcel = make_shipment(order_ref="ORD-7")
    response = look_up(client, "ORD-7", "SW1A 2AA")
    assert response.status_code == 303
    assert response["Location"] == parcel.get_absolute_url()


def test_a_parcel_of_the_order_going_elsewhere_is_not_shown(client, order, make_shipment):
    elsewhere = make_shipment(order_ref="ORD-1001", destination_postcode="E1 6AN", recipient_email="bo@example.com")
    response = look_up(client, "ORD-1001", "SW1A 2AA")
    assert elsewhere.get_absolute_url() not in links(response)
    assert elsewhere.tracking_number not in response.content.decode()
    # With its own postcode it is found, alone.
    alone = look_up(client, "ORD-1001", "E1 6AN")
    assert alone.status_code == 303 and alone["Location"] == elsewhere.get_absolute_url()


def test_no_such_order_and_wrong_postcode_get_the_same_answer(client, order):
    unknown = look_up(client, "ORD-9999", "SW1A 2AA")
    wrong_postcode = look_up(client, "ORD-1001", "E1 6AN")
    wrong_email = look_up(client, "ORD-1001", "someone@example.com")
    unknown_number = look_up(client, "NOSUCH123", "SW1A 2AA")
    assert {r.status_code for r in (unknown, wrong_postcode, wrong_email, unknown_number)} == {200}
    # The same page but for what was typed, given back in the form.
    typed = re.compile(r' value="[^"]*" maxlength')
    pages = {typed.sub(" maxlength", without_tokens(r)) for r in (unknown, wrong_postcode, wrong_email, unknown_number)}
    assert len(pages) == 1
    assert "We could not find a parcel" in unknown.content.decode()
    assert not links(wrong_postcode)


def test_an_unknown_brands_order_look_up_is_the_same_404(client, order):
    response = look_up(client, "ORD-1001", "SW1A 2AA", path="/track/nobody/")
    assert response.status_code == 404
    assert not links(response)


def test_brand_a_squatting_brand_bs_reference_sees_none_of_bs_parcels(client, order, make_shipment, other_brand):
    # Brand "Other Co" makes parcels under Acme's order reference, to the
    # same postcode: the global look-up must not mix them nor pick.
    squatters = [make_shipment(order_ref="ORD-1001", for_brand=other_brand) for _ in range(2)]
    response = look_up(client, "ORD-1001", "SW1A 2AA")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Which company is your parcel from?" in html
    assert "Acme Parcels" in html and "Other Co" in html
    assert not links(response)
    for parcel in [*order, *squatters]:
        assert parcel.tracking_number not in html
    # Each brand's own look-up shows only its own parcels.
    acme = look_up(client, "ORD-1001", "SW1A 2AA", path="/track/acme/")
    assert links(acme) == {parcel.get_absolute_url() for parcel in order}
    other = look_up(client, "ORD-1001", "SW1A 2AA", path="/track/other/")
    assert links(other) == {parcel.get_absolute_url() for parcel in squatters}


def test_a_squatter_with_another_postcode_is_not_offered(client, order, make_shipment, other_brand):
    for _ in range(3):
        make_shipment(order_ref="ORD-1001", for_brand=other_brand, destination_postcode="E1 6AN")
    response = look_up(client, "ORD-1001", "SW1A 2AA")
    assert "Other Co" not in response.content.decode()
    assert links(response) == {parcel.get_absolute_url() for parcel in order}


def test_many_squatted_parcels_do_not_crowd_out_the_brands_own(client, make_shipment, other_brand, brand):
    # "Other Co" sorts after "Acme Parcels"; make the squatter sort first.
    other_brand.name = "AAA Parcels"
    other_brand.save()
    Shipment.objects.bulk_create(
        Shipment(brand=other_brand, tracking_number=f"SQ{n:04d}", order_ref="ORD-1001", destination_postcode="E1 6AN")
        for n in range(300)
    )
    mine = [make_shipment(order_ref="ORD-1001") for _ in range(2)]
    response = look_up(client, "ORD-1001", "SW1A 2AA")
    assert links(response) == {parcel.get_absolute_url() for parcel in mine}


def test_a_parcel_whose_link_has_expired_is_not_listed(client, order):
    long_ago = timezone.now() - timedelta(days=settings.TRACKING_LINK_DAYS_AFTER_DELIVERY + 1)
    Shipment.objects.filter(pk=order[2].pk).update(status=Status.DELIVERED, delivered_at=long_ago)
    response = look_up(client, "ORD-1001", "SW1A 2AA")
    assert links(response) == {order[0].get_absolute_url(), order[1].get_absolute_url()}


def test_a_reference_that_is_also_a_tracking_number_shows_both(client, order, make_shipment):
    same = make_shipment(tracking_number="ORD-1001")
    response = look_up(client, "ORD-1001", "SW1A 2AA")
    assert links(response) == {parcel.get_absolute_url() for parcel in [*order, same]}


def test_failed_order_look_ups_count_against_the_reference(client, order):
    answers = [look_up(client, "ORD-1001", f"X{n} 1AA", address=f"10.1.0.{n}") for n in range(1, 12)]
    assert [r.status_code for r in answers[:FAILED_LOOKUPS_PER_NUMBER]] == [200] * FAILED_LOOKUPS_PER_NUMBER
    assert answers[FAILED_LOOKUPS_PER_NUMBER].status_code == 429
    # Now even the right postcode gets nothing, from a fresh address...
    limited = look_up(client, "ord-1001", "SW1A 2AA", address="10.2.0.1")
    assert limited.status_code == 429 and "Retry-After" in limited
    assert not links(limited)
    # ...while other orders and numbers are not limited.
    assert look_up(client, order[0].tracking_number, "SW1A 2AA", address="10.2.0.2").status_code == 303


def test_the_address_limit_holds_for_orders(client, order):
    answers = [look_up(client, f"ORD-{n}", "SW1A 2AA", address="10.3.0.1") for n in range(12)]
    assert answers[-1].status_code == 429


def test_a_script_in_the_reference_is_text(client, make_shipment):
    hostile = '<script>alert(1)</script>"'
    for _ in range(2):
        make_shipment(order_ref=hostile)
    response = look_up(client, hostile, "SW1A 2AA")
    html = response.content.decode()
    assert len(links(response)) == 2
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_empty_order_reference_names_no_order(client, make_shipment):
    for _ in range(2):
        make_shipment()  # no order_ref
    response = look_up(client, " ", "SW1A 2AA")
    assert not links(response)


def test_the_parcel_look_up_the_frames_use_still_finds_parcels_only(order):
    assert find_for_lookup("ORD-1001", "SW1A 2AA") == []
    assert [match.url for match in find_for_lookup(order[0].tracking_number, "SW1A 2AA")] == [
        order[0].get_absolute_url()
    ]


@pytest.mark.parametrize("language", ["es", "de"])
def test_the_order_answer_is_in_the_pages_languages(client, order, language):
    response = client.post(
        f"/track/?lang={language}",
        {"tracking_number": "ORD-1001", "postcode_or_email": "SW1A 2AA"},
        REMOTE_ADDR="10.0.0.9",
    )
    assert response.status_code == 200
    assert f'lang="{language}"' in response.content.decode()
    assert len(links(response)) == 3
