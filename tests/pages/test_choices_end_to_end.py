"""Each customer choice from the click to everyone who acts on it: the
customer's POST as a browser without JavaScript sends it (the CSRF token
taken from the page), then what the driver's manifest API returns, the one
brand webhook planned from the outbox (consumed once, even when the task
runs twice), what support staff see in the admin, and what the tracking
page says. Then the answers to a repeated POST and to bad input."""

import datetime as dt
import json
import re
from unittest import mock

import pytest
import time_machine
from django.test import Client

from notifications import tasks
from notifications.models import Channel, Notification
from notifications.transports import Sent
from notifications.transports.webhook import WebhookTransport
from pages.choices import CHOICE_ADDRESS_LIMIT, CHOICE_LINK_LIMIT
from pages.tracking import REPORT_LINK_LIMIT
from shipments import alert_work, choices, keys, limiter, services
from shipments.models import Alert, DeliveryChoice, Driver, Notice, Route, Shipment, Stop
from tests.conftest import T0, event
from tests.shipments.admin_helpers import brand_staff
from tests.shipments.api_helpers import Api

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_limits")]

# T0 is Thursday 26 November 2026, 08:00 UTC; the attempt fails at 09:00.
NOW = T0 + dt.timedelta(hours=2)
ROUTE_DAY = "2026-11-27"
SECRETS = ("Example Street", "SW1A", "+447700900123", "ada@example.com", "Lovelace")


@pytest.fixture(autouse=True)
def at_ten():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def hooked(brand):
    brand.webhook_url = "https://hooks.acme.example/parcels"
    brand.webhook_secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    brand.save()
    return brand


@pytest.fixture
def shop(brand):
    return choices.create_pickup_point(
        brand=brand, name="Corner Shop", line1="3 High Street", postcode="N1 9GU", city="London"
    )


@pytest.fixture
def on_route(hooked, shipment):
    driver = Driver.objects.create(brand=hooked, ref="van-7")
    route = Route.objects.create(driver=driver, date=dt.date.fromisoformat(ROUTE_DAY))
    Stop.objects.create(route=route, shipment=shipment, sequence=1)
    return shipment


def moved_to(shipment, *steps) -> Shipment:
    for minutes, status, substatus in steps:
        services.record_event(shipment_id=shipment.pk, event=event(status, minutes, substatus=substatus))
    return Shipment.objects.get(pk=shipment.pk)


FAILED = ((30, "out_for_delivery", ""), (60, "failed_attempt", "recipient_unavailable"))
ON_ITS_WAY = ((30, "in_transit", ""),)
DELIVERED = ((30, "out_for_delivery", ""), (60, "delivered", ""))


def customer():
    """A browser without JavaScript, which CSRF protection applies to."""
    return Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="10.9.3.1")


def token_from(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def post_from_page(browser, shipment, path, data, page="actions/"):
    """Open the page holding the form, then post it with that page's token."""
    html = browser.get(shipment.get_absolute_url() + page).content.decode()
    return browser.post(shipment.get_absolute_url() + path, {"csrfmiddlewaretoken": token_from(html), **data})


def manifest_stop(brand) -> dict:
    api = Api(Client(), keys.create_api_key(brand=brand, name="driver app")[1])
    response = api.get(f"/routes/van-7/{ROUTE_DAY}")
    assert response.status_code == 200, response.content
    [stop] = response.json()["stops"]
    return stop


def planned_webhooks(shipment) -> list[dict]:
    """Run the outbox's planning task twice (a redelivered task), with the
    brand's endpoint answering 200; the webhooks planned and sent."""
    outbox = list(Notice.objects.filter(shipment=shipment).values_list("pk", flat=True))
    with mock.patch.object(WebhookTransport, "send", autospec=True, return_value=Sent("ok", 200)) as send:
        tasks.plan_notices_task.apply(args=[outbox])
        tasks.plan_notices_task.apply(args=[outbox])
    rows = list(Notification.objects.filter(shipment=shipment, channel=Channel.WEBHOOK).order_by("pk"))
    assert send.call_count == len(rows)
    assert not Notice.objects.filter(pk__in=outbox, processed_at=None).exists()
    return [json.loads(row.body) for row in rows]


def timeline_of(html: str) -> str:
    return re.search(r'<section id="timeline".*?</section>', html, re.S).group(0)


TOLD = {
    "not_received": "You told us the parcel has not arrived. The support team has it.",
    "damaged": "You told us the parcel is damaged. The support team has it.",
}


def staff_client(brand):
    client = Client()
    client.force_login(brand_staff(brand))
    return client


def public_page(shipment) -> str:
    html = Client().get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for secret in SECRETS:
        assert secret not in html
    return html


DELIVERY_CHOICES = [
    (
        {"kind": "new_day", "date": "2026-11-30"},
        {"kind": "new_day", "date": "2026-11-30", "detail": ""},
        "A new day",
        "We&#x27;ll bring it on Mon 30 Nov.",
    ),
    (
        {"kind": "safe_place", "safe_place": "Behind the side gate"},
        {"kind": "safe_place", "date": None, "detail": "Behind the side gate"},
        "A safe place",
        "the driver will leave it in your safe place: Behind the side gate",
    ),
    (
        {"kind": "neighbour", "neighbour": "Sam Patel, number 14"},
        {"kind": "neighbour", "date": None, "detail": "Sam Patel, number 14"},
        "A neighbour",
        "the driver will leave it with your neighbour: Sam Patel, number 14",
    ),
    (
        {"kind": "pickup_point"},
        {"kind": "pickup_point", "date": None, "detail": ""},
        "A pickup point",
        "We&#x27;ll take it to Corner Shop for you to collect.",
    ),
]


@pytest.mark.parametrize(
    ("posted", "on_manifest", "in_admin", "on_page"), DELIVERY_CHOICES, ids=[c[0]["kind"] for c in DELIVERY_CHOICES]
)
def test_a_delivery_choice_from_the_click_to_the_driver_the_brand_support_and_the_page(
    on_route, hooked, shop, posted, on_manifest, in_admin, on_page
):
    shipment = moved_to(on_route, *FAILED)
    if posted["kind"] == "pickup_point":
        posted = {**posted, "pickup_point": str(shop.pk)}
    assert manifest_stop(hooked)["delivery_choice"] is None

    response = post_from_page(customer(), shipment, "choice/", posted)
    assert response.status_code == 303 and response["Location"] == shipment.get_absolute_url() + "#status"

    choice = manifest_stop(hooked)["delivery_choice"]
    assert {name: choice[name] for name in ("kind", "date", "detail")} == on_manifest
    assert (choice["pickup_point"] or {}).get("name") == ("Corner Shop" if posted["kind"] == "pickup_point" else None)

    [webhook] = planned_webhooks(shipment)
    assert webhook["type"] == "shipment.delivery_choice_updated"
    assert webhook["data"]["tracking_number"] == shipment.tracking_number
    assert webhook["data"]["delivery_choice"]["kind"] == posted["kind"]

    admin = staff_client(hooked).get(f"/admin/shipments/shipment/{shipment.pk}/change/").content.decode()
    assert in_admin in admin
    if on_manifest["detail"]:
        assert on_manifest["detail"] in admin

    html = public_page(shipment)
    timeline = re.search(r'<section id="timeline".*?</section>', html, re.S).group(0)
    assert "Your choice" in timeline and on_page in timeline


def test_an_address_note_goes_to_support_never_into_the_drivers_address(on_route, hooked):
    shipment = moved_to(on_route, *ON_ITS_WAY)
    before = manifest_stop(hooked)
    note = "Flat 3 is round the back, blue door"

    response = post_from_page(customer(), shipment, "address-note/", {"note": note})
    assert response.status_code == 200
    assert "We passed your note to the support team at Acme Parcels" in response.content.decode()

    # The driver's manifest keeps the address as the brand sent it, and
    # shows the note beside it, as the shipment's API answer does.
    after = manifest_stop(hooked)
    assert before["address_note"] is None
    assert after["destination"] == before["destination"] and note not in json.dumps(after["destination"])
    assert after["address_note"]["text"] == note
    api = Api(Client(), keys.create_api_key(brand=hooked, name="shop")[1])
    assert api.get(f"/shipments/{shipment.tracking_number}").json()["address_note"] == after["address_note"]

    [webhook] = planned_webhooks(shipment)
    assert webhook["type"] == "shipment.alert_opened"
    assert webhook["data"]["kind"] == "customer_report"
    assert webhook["data"]["detail"] == {"problem": "address_note", "text": note}

    alert = Alert.objects.get(shipment=shipment, kind="customer_report", state="open")
    admin = staff_client(hooked).get(f"/admin/shipments/alert/{alert.pk}/change/").content.decode()
    assert note in admin and shipment.tracking_number in admin

    # The page's timeline says the note went to support, never the note
    # itself (it may hold an address).
    html = public_page(shipment)
    assert note not in html
    assert "Your message to support" in timeline_of(html)
    assert "Your note on the address went to the support team." in timeline_of(html)


def test_the_manifest_shows_the_latest_address_note_until_support_settle_it(on_route, hooked):
    shipment = moved_to(on_route, *ON_ITS_WAY)
    post_from_page(customer(), shipment, "address-note/", {"note": "Flat 3"})
    post_from_page(customer(), shipment, "address-note/", {"note": "Flat 3, round the back"})
    assert manifest_stop(hooked)["address_note"]["text"] == "Flat 3, round the back"
    alert = Alert.objects.get(shipment=shipment, kind="customer_report", state="open")
    alert_work.resolve(alert=alert, user=brand_staff(hooked), reason=sorted(alert_work.STAFF_REASONS)[0])
    assert manifest_stop(hooked)["address_note"] is None


@pytest.mark.parametrize(("problem", "label"), [("not_received", "Not received"), ("damaged", "Damaged")])
def test_a_report_after_delivery_from_the_click_to_the_brand_support_and_the_page(on_route, hooked, problem, label):
    shipment = moved_to(on_route, *DELIVERED)
    text = "Nothing at the door"
    page = public_page(shipment)
    assert f'value="{problem}"' in page

    response = post_from_page(customer(), shipment, "report/", {"problem": problem, "text": text}, page="")
    assert response.status_code == 303 and response["Location"] == shipment.get_absolute_url() + "#report"

    # The driver's manifest: the stop as delivered, nothing of the report.
    stop = manifest_stop(hooked)
    assert stop["status"] == "delivered" and text not in json.dumps(stop)

    [webhook] = planned_webhooks(shipment)
    assert webhook["type"] == "shipment.alert_opened"
    assert webhook["data"]["kind"] == "customer_report"
    assert webhook["data"]["detail"] == {"problem": problem, "text": text}

    alert = Alert.objects.get(shipment=shipment, kind="customer_report", state="open")
    admin = staff_client(hooked).get(f"/admin/shipments/alert/{alert.pk}/change/").content.decode()
    assert text in admin and problem in admin

    html = public_page(shipment)
    report = re.search(r'<section id="report".*?</section>', html, re.S).group(0)
    assert "We passed your report to the support team at Acme Parcels." in report
    assert 'name="problem"' not in report and text not in html
    assert TOLD[problem] in timeline_of(html)


def test_a_report_after_an_address_note_reaches_support_on_the_open_alert(on_route, hooked):
    shipment = moved_to(on_route, *ON_ITS_WAY)
    # The note on the way (between the scans), the report after delivery.
    with time_machine.travel(T0 + dt.timedelta(minutes=45), tick=False):
        post_from_page(customer(), shipment, "address-note/", {"note": "Flat 3"})
    shipment = moved_to(shipment, (60, "delivered", ""))
    response = post_from_page(customer(), shipment, "report/", {"problem": "not_received"}, page="")
    assert response.status_code == 200
    assert "We added your report to your earlier message to the support team" in response.content.decode()
    alert = Alert.objects.get(shipment=shipment, kind="customer_report", state="open")
    admin = staff_client(hooked).get(f"/admin/shipments/alert/{alert.pk}/change/").content.decode()
    assert "Flat 3" in admin and "Reported: not received" in admin and "the customer" in admin
    # One alert: opened by the note, then updated by the report.
    opened, updated = planned_webhooks(shipment)
    assert (opened["type"], updated["type"]) == ("shipment.alert_opened", "shipment.alert_updated")
    assert opened["data"]["detail"] == {"problem": "address_note", "text": "Flat 3"}
    # The same alert: its kind and opening (with the tracking number, how a
    # brand tells its alerts apart), the note still its detail.
    same = ("tracking_number", "kind", "opened_at", "detail")
    assert {k: updated["data"][k] for k in same} == {k: opened["data"][k] for k in same}
    assert {k: updated["data"]["update"][k] for k in ("problem", "text")} == {"problem": "not_received", "text": ""}
    # The page's timeline: the report newest, above the delivery; the
    # note between the scans it came between.
    items = re.findall(
        r'<p class="event-status">([^<]+)</p>(?:<p class="event-text">([^<]*)</p>)?', timeline_of(public_page(shipment))
    )
    assert [label for label, _text in items] == [
        "Your message to support",
        "Delivered",
        "Your message to support",
        "In transit",
    ]
    assert items[0][1] == TOLD["not_received"]
    assert items[2][1] == "Your note on the address went to the support team."


REPEATS = [
    (FAILED, "choice/", {"kind": "new_day", "date": "2026-11-30"}, "You had already chosen this"),
    (FAILED, "choice/", {"kind": "safe_place", "safe_place": "Porch"}, "You had already chosen this"),
    (FAILED, "choice/", {"kind": "neighbour", "neighbour": "Sam, 14"}, "You had already chosen this"),
    (FAILED, "choice/", {"kind": "pickup_point"}, "You had already chosen this"),
    (ON_ITS_WAY, "address-note/", {"note": "Flat 3"}, "We already have this note, so nothing has changed."),
    (DELIVERED, "report/", {"problem": "not_received"}, "You have already reported a problem with this parcel."),
    (DELIVERED, "report/", {"problem": "damaged"}, "You have already reported a problem with this parcel."),
]


@pytest.mark.parametrize(
    ("steps", "path", "data", "answer"),
    REPEATS,
    ids=[r[2].get("kind") or r[2].get("problem") or "note" for r in REPEATS],
)
def test_a_repeated_post_changes_nothing_twice_and_says_so(on_route, shop, steps, path, data, answer):
    shipment = moved_to(on_route, *steps)
    if data.get("kind") == "pickup_point":
        data = {**data, "pickup_point": str(shop.pk)}
    browser = customer()
    first = post_from_page(browser, shipment, path, data)
    assert first.status_code in (200, 303)
    version = Shipment.objects.get(pk=shipment.pk).version
    outbox = Notice.objects.filter(shipment=shipment).count()
    alerts = list(Alert.objects.filter(shipment=shipment).values_list("pk", "detail"))

    again = post_from_page(browser, shipment, path, data)
    assert again.status_code == 200
    assert answer in again.content.decode().replace("&#x27;", "'")
    assert Shipment.objects.get(pk=shipment.pk).version == version
    assert Notice.objects.filter(shipment=shipment).count() == outbox
    assert list(Alert.objects.filter(shipment=shipment).values_list("pk", "detail")) == alerts


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "teleport"}, "Select a valid choice."),
        ({"kind": "new_day", "date": "2026-11-28"}, "That day is not one we can deliver on."),  # a Saturday
        ({"kind": "new_day", "date": "2027-06-01"}, "That day is not one we can deliver on."),  # far past the offer
        ({"kind": "safe_place", "safe_place": "x" * 201}, "Please keep it to 200 characters (it has 201)."),
        ({"kind": "neighbour", "neighbour": "y" * 5000}, "Please keep it to 200 characters (it has 5000)."),
    ],
    ids=["unknown choice", "not a delivery day", "outside the days offered", "safe place too long", "oversize"],
)
def test_a_bad_choice_is_a_clear_form_error_and_changes_nothing(on_route, data, message):
    shipment = moved_to(on_route, *FAILED)
    response = post_from_page(customer(), shipment, "choice/", data)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not DeliveryChoice.objects.filter(shipment=shipment).exists()
    assert not Notice.objects.filter(shipment=shipment).exists()


def test_an_oversize_address_note_or_report_is_a_form_error(on_route):
    shipment = moved_to(on_route, *ON_ITS_WAY)
    note = post_from_page(customer(), shipment, "address-note/", {"note": "z" * 301})
    assert note.status_code == 400 and "Please keep it to 300 characters (it has 301)." in note.content.decode()
    report = post_from_page(customer(), shipment, "report/", {"problem": "damaged", "text": "z" * 501})
    assert report.status_code == 400 and "(it has 501)" in report.content.decode()
    assert not Alert.objects.filter(shipment=shipment).exists()


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("choice/", {"kind": "new_day", "date": "2026-11-30"}),
        ("address-note/", {"note": "Flat 3"}),
        ("report/", {"problem": "not_received"}),
    ],
    ids=["choice", "address note", "report"],
)
def test_an_expired_link_answers_410_and_changes_nothing(on_route, path, data):
    shipment = moved_to(on_route, *DELIVERED)
    browser = customer()
    html = browser.get(shipment.get_absolute_url() + "actions/").content.decode()
    token = token_from(html)
    # A delivered parcel's link expires 30 days on; whatever the form.
    with time_machine.travel(NOW + dt.timedelta(days=400), tick=False):
        response = browser.post(shipment.get_absolute_url() + path, {"csrfmiddlewaretoken": token, **data})
    assert response.status_code == 410
    assert not DeliveryChoice.objects.filter(shipment=shipment).exists()
    assert not Alert.objects.filter(shipment=shipment).exists()


def test_another_parcels_link_or_no_parcels_link_changes_nothing(on_route, make_shipment):
    mine = moved_to(on_route, *FAILED)
    theirs = moved_to(make_shipment(), *DELIVERED)
    browser = customer()
    token = token_from(browser.get(mine.get_absolute_url() + "actions/").content.decode())
    choice = {"csrfmiddlewaretoken": token, "kind": "new_day", "date": "2026-11-30"}
    # The form of one parcel posted to another's link: judged by that
    # parcel's state (delivered: no choice to make), never applied to mine.
    other = browser.post(theirs.get_absolute_url() + "choice/", choice)
    assert other.status_code == 409
    assert "no longer waiting for a new delivery" in other.content.decode()
    # A token that is no parcel's.
    assert browser.post("/t/" + "q" * 43 + "/choice/", choice).status_code == 404
    assert browser.post("/t/" + "q" * 43 + "/report/", {**choice, "problem": "damaged"}).status_code == 404
    # The form posted without this visitor's CSRF token.
    forged = browser.post(mine.get_absolute_url() + "choice/", {**choice, "csrfmiddlewaretoken": "x" * 64})
    assert forged.status_code == 403
    assert not DeliveryChoice.objects.exists() and not Alert.objects.exists()


def test_the_rate_limits_answer_429_with_retry_after(on_route, make_shipment):
    shipment = moved_to(on_route, *FAILED)
    for _ in range(CHOICE_ADDRESS_LIMIT.amount):
        limiter.hit(CHOICE_ADDRESS_LIMIT, "10.9.3.1")
    limited = post_from_page(customer(), shipment, "choice/", {"kind": "new_day", "date": "2026-11-30"})
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert "Too many requests in a short time" in limited.content.decode()
    assert not DeliveryChoice.objects.filter(shipment=shipment).exists()

    delivered = moved_to(make_shipment(), *DELIVERED)
    for _ in range(REPORT_LINK_LIMIT.amount):
        limiter.hit(REPORT_LINK_LIMIT, delivered.public_token)
    report = post_from_page(customer(), delivered, "report/", {"problem": "damaged"}, page="")
    assert report.status_code == 429 and int(report["Retry-After"]) > 0
    assert not Alert.objects.filter(shipment=delivered).exists()


def test_notes_on_one_link_are_capped_so_the_brand_hears_no_flood(on_route, hooked):
    """Each new note on an open report is a shipment.alert_updated webhook:
    from however many addresses, one link's notes stop at its limit."""
    shipment = moved_to(on_route, *ON_ITS_WAY)
    post_from_page(customer(), shipment, "address-note/", {"note": "Flat 3"})
    for _ in range(CHOICE_LINK_LIMIT.amount - 1):
        limiter.hit(CHOICE_LINK_LIMIT, shipment.public_token)
    updates = Notice.objects.filter(shipment=shipment, kind="alert_updated")
    assert not updates.exists()
    limited = post_from_page(customer(), shipment, "address-note/", {"note": "Flat 3, round the back"})
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert not updates.exists()
    assert Alert.objects.get(shipment=shipment, state="open").activity.filter(action="note").count() == 0
