"""A parcel waiting at a pickup point (where, the code, until when, the map;
no delivery window), the returned parcel's words, and the customer's note on
the address before delivery (to support, never into the address)."""

import datetime as dt
import re

import pytest
import time_machine
from django.test import Client

from shipments import choices, services
from shipments.models import Alert, AlertActivity, Shipment
from tests.conftest import T0, event
from tests.shipments.admin_helpers import brand_staff

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_limits")]

NOW = T0 + dt.timedelta(hours=2)
SECRETS = ("Example Street", "SW1A", "+447700900123", "ada@example.com", "Lovelace")


@pytest.fixture(autouse=True)
def at_ten():
    with time_machine.travel(NOW, tick=False):
        yield


def page(shipment) -> str:
    return Client().get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.fixture
def waiting(make_shipment, brand):
    shipment = make_shipment(
        promised_window_start=NOW + dt.timedelta(hours=1), promised_window_end=NOW + dt.timedelta(hours=3)
    )
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 10))
    services.record_event(shipment_id=shipment.pk, event=event("available_for_pickup", 60))
    shop = choices.create_pickup_point(
        brand=brand,
        name="Corner Shop",
        line1="3 High Street",
        postcode="N1 9GU",
        city="London",
        lat=51.5362,
        lng=-0.1033,
        opening_hours=[{"day": 4, "opens": "08:00", "closes": "19:00"}],
    )
    choices.set_pickup_hold(
        shipment=shipment, pickup_point=shop, collection_code="K7-2291", collect_by=dt.date(2026, 12, 4)
    )
    return Shipment.objects.get(pk=shipment.pk)


def test_a_parcel_ready_for_pickup_shows_where_the_code_and_the_deadline_not_a_window(waiting):
    html = page(waiting)
    assert "Corner Shop" in html and "3 High Street, N1 9GU London" in html
    assert "K7-2291" in html
    assert "Collect by Fri 4 Dec" in html
    assert re.search(r"<th scope=\"row\">Friday</th><td>08:00–19:00</td>", html)
    assert "Delivery window" not in html and "Expected around" not in html and "Running late" not in html
    # A pin on the shop itself (a shop's place is public), not a home's vague circle.
    assert 'data-place-lat="51.53620" data-place-lng="-0.10330"' in html and "data-dest-lat" not in html
    assert "The marker shows where Corner Shop is." in html
    for secret in SECRETS:
        assert secret not in html


def test_ready_for_pickup_does_not_mark_out_for_delivery_as_the_current_step(waiting):
    html = page(waiting)
    steps = re.findall(
        r'<li class="step step-(\w+)"[^>]*>\s*<span class="step-bar"[^>]*></span>\s*<span class="step-label">([^<]+)',
        html,
    )
    assert ("current", "Ready for pickup") in steps, steps
    assert ("current", "Out for delivery") not in steps
    assert all(label != "Out for delivery" for _state, label in steps)


def steps_of(html: str) -> list[tuple[str, str]]:
    return re.findall(
        r'<li class="step step-(\w+)"[^>]*>\s*<span class="step-bar"[^>]*></span>\s*<span class="step-label">([^<]+)',
        html,
    )


def test_ready_for_pickup_by_a_carriers_scan_alone_says_so_without_inventing_a_place(make_shipment):
    # No hold and no choice: a carrier's scan put it at a point nobody named to us.
    shipment = make_shipment(
        promised_window_start=NOW + dt.timedelta(hours=1), promised_window_end=NOW + dt.timedelta(hours=3)
    )
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 10))
    services.record_event(
        shipment_id=shipment.pk,
        event=event("available_for_pickup", 60, description="Held at <Post Office> Camden, card left"),
    )
    html = page(shipment)
    assert "The carrier hasn't told us which pickup point it is at." in html
    assert "The carrier's latest message:" in html
    assert '<q lang="en">Held at &lt;Post Office&gt; Camden, card left</q>' in html
    assert "Collect it from" not in html and "Collection code" not in html and "Opening hours" not in html
    assert 'data-show="0"' in html  # no map of a place we don't know
    assert "Delivery window" not in html and "Expected around" not in html
    assert ("current", "Ready for pickup") in steps_of(html)
    for secret in SECRETS:
        assert secret not in html


def test_ready_for_pickup_at_the_point_the_customer_chose_shows_that_point(make_shipment, brand):
    shipment = make_shipment()
    services.record_event(shipment_id=shipment.pk, event=event("failed_attempt", 10))
    shop = choices.create_pickup_point(brand=brand, name="Locker 12", line1="Station Road", city="London")
    choices.choose_delivery(shipment_id=shipment.pk, kind="pickup_point", pickup_point_id=shop.pk, today=NOW.date())
    services.record_event(shipment_id=shipment.pk, event=event("available_for_pickup", 60))
    html = page(shipment)
    assert "Collect it from" in html and "Locker 12" in html and "Station Road, London" in html
    assert "Bring a photo ID." in html and "Bring the code" not in html
    # Neither a code nor hours were given: none is made up.
    assert "Collection code" not in html and "Opening hours" not in html and "Closed" not in html
    assert "hasn't told us" not in html
    assert 'data-show="0"' in html  # the locker has no location


@pytest.mark.parametrize(
    ("language", "going_back", "not_said"),
    [
        ("en", "This page no longer follows the parcel on its way back to the sender.", "This journey is complete"),
        (
            "es",
            "Esta página ya no sigue el paquete en su camino de vuelta al remitente.",
            "Este recorrido ha terminado",
        ),
        ("de", "Diese Seite verfolgt das Paket auf dem Rückweg zum Absender nicht mehr.", "abgeschlossen"),
    ],
)
def test_a_returned_parcel_is_not_said_to_be_on_its_way_back_beside_a_complete_journey(
    make_shipment, language, going_back, not_said
):
    shipment = make_shipment(
        promised_window_start=NOW + dt.timedelta(hours=1), promised_window_end=NOW + dt.timedelta(hours=3)
    )
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 5))
    services.record_event(shipment_id=shipment.pk, event=event("returned_to_sender", 10))
    html = Client().get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert going_back in html
    assert not_said not in html
    assert "Delivery window" not in html and "Expected around" not in html and "Running late" not in html
    # The line ends at the way back: never "out for delivery" or "delivered" still to come.
    steps = steps_of(html)
    assert [state for state, _label in steps] == ["done", "done", "current"], steps
    assert 'class="progress off-track"' in html


def test_a_returned_parcels_progress_line_ends_at_the_way_back():
    from django.utils import translation

    from pages.presenters import progress
    from shipments.statuses import Status

    with translation.override("en"):
        labels = [step["label"] for step in progress(Status.RETURNED_TO_SENDER)]
    assert labels == [
        "Label created",
        "In transit",
        "Returned to sender",
    ]
    assert [step["state"] for step in progress(Status.DELIVERED)] == ["done"] * 4


def test_a_delivered_parcel_still_ends_a_complete_journey(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 10))
    assert "This journey is complete, so this page no longer updates." in page(shipment)


def test_after_a_failed_attempt_the_old_window_is_not_shown(make_shipment):
    shipment = make_shipment(
        promised_window_start=T0 + dt.timedelta(minutes=30), promised_window_end=NOW + dt.timedelta(hours=2)
    )
    services.record_event(shipment_id=shipment.pk, event=event("failed_attempt", 60))
    html = page(shipment)
    assert "Delivery window" not in html and "Running late" not in html
    assert "Choose a new day, a safe place, a neighbour or a pickup point" in html


def note(client, shipment, text, address="10.9.0.1"):
    html = client.get(shipment.get_absolute_url() + "actions/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    return client.post(
        shipment.get_absolute_url() + "address-note/",
        {"note": text, "csrfmiddlewaretoken": token},
        HTTP_ACCEPT_LANGUAGE="en",
        REMOTE_ADDR=address,
    )


@pytest.mark.parametrize("state", ["in_transit", "out_for_delivery", "address_issue"])
def test_an_address_note_goes_to_support_not_into_the_address(make_shipment, brand, state):
    shipment = make_shipment()
    if state == "address_issue":
        services.record_event(shipment_id=shipment.pk, event=event("exception", 10, substatus="address_issue"))
    else:
        services.record_event(shipment_id=shipment.pk, event=event(state, 10))
    client = Client(enforce_csrf_checks=True)
    response = note(client, shipment, "Flat 3 is round the back, blue door")
    assert response.status_code == 200
    assert "We passed your note to the support team at Acme Parcels" in response.content.decode()
    [alert] = Alert.objects.filter(shipment=shipment, kind="customer_report", state="open")
    assert alert.detail == {"problem": "address_note", "text": "Flat 3 is round the back, blue door"}
    fresh = Shipment.objects.get(pk=shipment.pk)
    assert (fresh.destination_line1, fresh.destination_line2) == ("1 Example Street", "")

    # The same note again adds nothing and says so; another one joins the report.
    again = note(client, shipment, "Flat 3 is round the back, blue door")
    assert "We already have this note, so nothing has changed." in again.content.decode()
    assert note(client, shipment, "Ring twice").status_code == 200
    assert Alert.objects.filter(shipment=shipment, kind="customer_report").count() == 1
    assert list(AlertActivity.objects.filter(alert=alert, action="note").values_list("text", flat=True)) == [
        "Ring twice"
    ]

    # Support's queue shows it.
    staff = Client()
    staff.force_login(brand_staff(brand))
    queue = staff.get(f"/admin/shipments/alert/{alert.pk}/change/").content.decode()
    assert "Flat 3 is round the back, blue door" in queue


def test_bad_address_notes_get_a_clear_answer(make_shipment):
    shipment = make_shipment()
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 10))
    client = Client()
    too_long = note(client, shipment, "x" * 301)
    assert too_long.status_code == 400
    assert "Please keep it to 300 characters (it has 301)." in too_long.content.decode()
    empty = note(client, shipment, "   ")
    assert empty.status_code == 400
    assert "Please write what is missing or wrong." in empty.content.decode()
    assert not Alert.objects.filter(shipment=shipment).exists()


def test_no_address_note_once_delivered(make_shipment):
    shipment = make_shipment()
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 10))
    response = Client().post(shipment.get_absolute_url() + "address-note/", {"note": "Flat 3"}, REMOTE_ADDR="10.9.0.5")
    assert response.status_code == 409
    assert not Alert.objects.filter(shipment=shipment, kind="customer_report").exists()
