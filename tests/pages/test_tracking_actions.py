"""The customer's forms, apart from the cached tracking page: the #actions
slot on the page and the uncached /t/<token>/actions/ page and fragment."""

import datetime as dt
import re

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import timezone

from shipments import services
from shipments.customer import leave_delivery_instructions, rate_delivery
from shipments.models import Shipment
from shipments.statuses import Status
from tests.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


def actions_url(shipment) -> str:
    return shipment.get_absolute_url() + "actions/"


def get(client, url, **headers):
    return client.get(url, HTTP_ACCEPT_LANGUAGE="en", **headers)


def slot(html: str) -> str:
    return re.search(r'<div id="actions".*?</div>\n', html, re.S).group(0)


def test_the_page_holds_no_form_only_a_slot_that_loads_them_and_a_link(client, shipment):
    html = get(client, shipment.get_absolute_url()).content.decode()
    assert "<form" not in html and "csrfmiddlewaretoken" not in html
    assert settings.CSRF_COOKIE_NAME not in client.cookies
    actions = slot(html)
    assert f'hx-get="{actions_url(shipment)}"' in actions and 'hx-trigger="load' in actions
    assert f'<a class="button" href="{actions_url(shipment)}">Leave instructions or get updates</a>' in actions


@pytest.mark.parametrize(
    ("status", "link"),
    [
        (Status.PENDING, "Leave instructions or get updates"),
        (Status.IN_TRANSIT, "Leave instructions or get updates"),
        (Status.FAILED_ATTEMPT, "Leave instructions or get updates"),
        (Status.OUT_FOR_DELIVERY, "Get updates"),
        (Status.AVAILABLE_FOR_PICKUP, "Get updates"),
        (Status.CANCELLED, None),
        (Status.RETURNED_TO_SENDER, None),
    ],
)
def test_the_link_says_what_the_customer_can_do_now(client, shipment, status, link):
    if status != Status.PENDING:
        services.record_event(shipment_id=shipment.pk, event=event(status))
    actions = slot(get(client, shipment.get_absolute_url()).content.decode())
    if link is None:
        assert 'class="button"' not in actions
    else:
        assert f">{link}</a>" in actions
    # Whatever else applies, a problem can be reported.
    assert f'<a href="{actions_url(shipment)}#report">Report a problem</a>' in actions
    # A finished journey's page loads no scripts: nothing to load the forms with.
    assert ("hx-get" in actions) is not Shipment.objects.get(pk=shipment.pk).is_terminal


def test_the_delivered_page_has_its_forms_on_the_page_itself(client, shipment):
    services.record_event(shipment_id=shipment.pk, event=event(Status.DELIVERED))
    response = get(client, shipment.get_absolute_url())
    html = response.content.decode()
    token = shipment.public_token
    assert f'action="/t/{token}/rating/"' in html and f'hx-post="/t/{token}/rating/"' in html
    assert f'action="/t/{token}/report/"' in html
    assert 'value="not_received"' in html and 'value="damaged"' in html
    # The cached page holds a placeholder; each visitor gets their own token.
    from pages import cache as page_cache

    assert page_cache.CSRF_PLACEHOLDER not in html
    assert response.cookies[settings.CSRF_COOKIE_NAME].value
    assert 'name="csrfmiddlewaretoken" value="' in html


def test_the_actions_page_without_javascript_is_a_whole_branded_page(shipment):
    client = Client(enforce_csrf_checks=True)
    response = get(client, actions_url(shipment))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<!doctype html>")
    assert 'class="brand-bar"' in html and "Acme Parcels" in html and "--brand: #" in html
    assert 'id="instructions"' in html and 'id="notify"' in html and 'id="rating"' not in html
    assert 'id="report"' in html
    assert html.count('name="csrfmiddlewaretoken"') == 3
    assert f'href="{shipment.get_absolute_url()}"' in html  # back to the parcel
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert settings.CSRF_COOKIE_NAME in response.cookies
    for secret in ("Example Street", "SW1A", "+447700900123", "ada@example.com", "Lovelace"):
        assert secret not in html


def test_the_actions_fragment_for_htmx_is_just_the_forms(client, shipment):
    response = get(client, actions_url(shipment), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="actions")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and "brand-bar" not in html
    assert 'id="instructions"' in html and 'id="notify"' in html and "csrfmiddlewaretoken" in html
    assert response["Cache-Control"] == "no-store"


def test_the_actions_page_after_delivery_offers_the_rating_then_thanks(client, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    html = get(client, actions_url(shipment)).content.decode()
    assert 'name="score"' in html and 'id="instructions"' not in html
    assert "no more updates" in html
    rate_delivery(shipment_id=shipment.pk, score=5)
    html = get(client, actions_url(shipment)).content.decode()
    assert 'name="score"' not in html and "You rated this delivery 5 out of 5" in html
    page = get(client, shipment.get_absolute_url()).content.decode()
    assert "You rated this delivery 5 out of 5" in slot(page) and 'class="button"' not in slot(page)


def test_the_slot_changes_its_state_only_when_the_forms_that_apply_do(client, shipment):
    def state():
        html = get(client, shipment.get_absolute_url()).content.decode()
        return re.search(r'data-actions="([^"]*)"', html).group(1)

    pending = state()
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 10))
    assert state() == pending
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 20))
    on_the_van = state()
    assert on_the_van != pending
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 30))
    assert state() not in (pending, on_the_van)


def test_saved_instructions_show_on_the_page_without_their_text(shipment):
    leave_delivery_instructions(shipment_id=shipment.pk, instructions="Code 1234, leave at the back")
    client = Client()
    actions = slot(get(client, shipment.get_absolute_url()).content.decode())
    assert 'id="instructions"' in actions and "Your instructions were passed to the driver" in actions
    assert "1234" not in actions
    assert "1234" not in get(client, actions_url(shipment)).content.decode()


def test_an_expired_link_has_no_actions_page(client, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    with time_machine.travel(timezone.now() + dt.timedelta(days=400), tick=False):
        assert get(client, actions_url(shipment)).status_code == 410


def test_unknown_token_has_no_actions_page(client):
    assert client.get("/t/" + "z" * 43 + "/actions/").status_code == 404
