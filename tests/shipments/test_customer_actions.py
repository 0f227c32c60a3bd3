"""Delivery instructions and ratings from the tracking page (shipments/customer.py and its views)."""

import re

import pytest
from django.test import Client

from shipments import services
from shipments.models import DeliveryRating, Shipment
from tests.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


def csrf_client_with_token(shipment):
    """A browser-like client that enforces CSRF and has read the customer's
    forms (the tracking page is cached and shared, so they live apart)."""
    client = Client(enforce_csrf_checks=True)
    html = client.get(shipment.get_absolute_url() + "actions/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    return client, (match.group(1) if match else None), html


def test_instructions_before_the_van_are_saved_and_shown(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    client, token, html = csrf_client_with_token(shipment)
    assert token and 'id="instructions"' in html
    version = Shipment.objects.get(pk=shipment.pk).version

    response = client.post(
        shipment.get_absolute_url() + "instructions/",
        {"instructions": "  Leave it in the porch  ", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 303
    assert response["Location"] == shipment.get_absolute_url() + "#instructions"
    shipment.refresh_from_db()
    assert shipment.delivery_instructions == "Leave it in the porch"
    assert shipment.version == version + 1
    page = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Your instructions were passed to the driver" in page
    # What the customer wrote (a door code, say) isn't shown to whoever has the link.
    assert "Leave it in the porch" not in page


def test_instructions_without_csrf_token_are_refused(shipment):
    client = Client(enforce_csrf_checks=True)
    response = client.post(shipment.get_absolute_url() + "instructions/", {"instructions": "Porch"})
    assert response.status_code == 403
    shipment.refresh_from_db()
    assert shipment.delivery_instructions == ""


def test_instructions_too_long_is_a_form_error(shipment):
    client, token, _ = csrf_client_with_token(shipment)
    response = client.post(
        shipment.get_absolute_url() + "instructions/",
        {"instructions": "x" * 501, "csrfmiddlewaretoken": token},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'aria-invalid="true"' in html and "at most 500 characters" in html
    # The customer's forms again, as a page of their own, uncached.
    assert 'class="brand-bar"' in html and 'name="csrfmiddlewaretoken"' in html
    assert response["Cache-Control"] == "no-store"
    shipment.refresh_from_db()
    assert shipment.delivery_instructions == ""


def test_instructions_once_out_for_delivery_are_refused(shipment):
    client, token, _ = csrf_client_with_token(shipment)
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery"))
    response = client.post(
        shipment.get_absolute_url() + "instructions/",
        {"instructions": "Porch", "csrfmiddlewaretoken": token},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "the driver can no longer get new instructions" in response.content.decode()
    shipment.refresh_from_db()
    assert shipment.delivery_instructions == ""
    assert 'id="instructions"' not in client.get(shipment.get_absolute_url()).content.decode()


def test_rating_only_after_delivery_and_only_once(shipment):
    client, token, html = csrf_client_with_token(shipment)
    assert 'id="rating"' not in html
    url = shipment.get_absolute_url() + "rating/"
    early = client.post(url, {"score": "5", "csrfmiddlewaretoken": token}, HTTP_ACCEPT_LANGUAGE="en")
    assert early.status_code == 400 and "once the parcel has been delivered" in early.content.decode()

    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    client, token, html = csrf_client_with_token(shipment)
    assert 'id="rating"' in html and 'name="score"' in html
    response = client.post(url, {"score": "4", "comment": " Quick and friendly ", "csrfmiddlewaretoken": token})
    assert response.status_code == 303
    rating = DeliveryRating.objects.get(shipment=shipment)
    assert (rating.score, rating.comment) == (4, "Quick and friendly")
    page = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "You rated this delivery 4 out of 5" in page and 'name="score"' not in page

    again = client.post(url, {"score": "1", "csrfmiddlewaretoken": token}, HTTP_ACCEPT_LANGUAGE="en")
    assert again.status_code == 400 and "already been rated" in again.content.decode()
    assert DeliveryRating.objects.get(shipment=shipment).score == 4


@pytest.mark.parametrize("score", ["0", "6", "", "five"])
def test_bad_scores_are_form_errors(shipment, score):
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    client, token, _ = csrf_client_with_token(shipment)
    response = client.post(shipment.get_absolute_url() + "rating/", {"score": score, "csrfmiddlewaretoken": token})
    assert response.status_code == 400
    assert 'id="score-error"' in response.content.decode()
    assert not DeliveryRating.objects.exists()


def test_actions_on_unknown_tokens_are_404(client):
    assert client.post("/t/" + "y" * 43 + "/instructions/", {"instructions": "x"}).status_code == 404
    assert client.post("/t/" + "y" * 43 + "/rating/", {"score": "5"}).status_code == 404
    assert client.get("/t/" + "y" * 43 + "/rating/").status_code == 405


def test_instructions_again_after_a_failed_attempt(shipment):
    services.record_events(shipment_id=shipment.pk, events=[event("out_for_delivery", 0), event("failed_attempt", 30)])
    client, token, html = csrf_client_with_token(shipment)
    assert 'id="instructions"' in html
    response = client.post(
        shipment.get_absolute_url() + "instructions/", {"instructions": "Side door", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 303
    shipment.refresh_from_db()
    assert shipment.delivery_instructions == "Side door"
