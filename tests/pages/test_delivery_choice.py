"""After a failed attempt the customer chooses what happens next (pages/choices.py
through shipments/choices.py): from their POST to what the driver's manifest,
the API, the brand's webhook outbox, the admin and the page show; bad and
repeated submissions answered clearly, changing nothing twice."""

import datetime as dt
import json
import re

import pytest
import time_machine
from django.test import Client

from notifications import notices
from notifications.models import Channel, Notification
from pages.choices import CHOICE_LINK_LIMIT
from shipments import choices, keys, limiter, services
from shipments.models import DeliveryChoice, Driver, Notice, NoticeKind, PickupPoint, Route, Shipment, Stop
from tests.conftest import T0, event
from tests.shipments.admin_helpers import brand_staff
from tests.shipments.api_helpers import Api

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_limits")]

# T0 is Thursday 26 November 2026, 08:00 UTC; the attempt fails at 09:00.
NOW = T0 + dt.timedelta(hours=2)
SECRETS = ("Example Street", "SW1A", "+447700900123", "ada@example.com", "Lovelace")
HOURS = [{"day": day, "opens": "09:00", "closes": "17:30"} for day in range(5)]


@pytest.fixture(autouse=True)
def at_noon():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def failed(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 30))
    services.record_event(shipment_id=shipment.pk, event=event("failed_attempt", 60, substatus="recipient_unavailable"))
    return Shipment.objects.get(pk=shipment.pk)


@pytest.fixture
def shop(brand):
    return choices.create_pickup_point(
        brand=brand,
        name="Corner Shop",
        line1="3 High Street",
        postcode="N1 9GU",
        city="London",
        lat=51.501,
        lng=-0.141,
        opening_hours=HOURS,
    )


@pytest.fixture
def rival_shop(other_brand):
    return choices.create_pickup_point(brand=other_brand, name="Rival Shop", line1="9 Low Road", city="Leeds")


def forms_page(client, shipment) -> str:
    return client.get(shipment.get_absolute_url() + "actions/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def choose(client, shipment, address="10.9.0.1", **data):
    page = forms_page(client, shipment)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    return client.post(
        shipment.get_absolute_url() + "choice/",
        {"csrfmiddlewaretoken": token, **data},
        HTTP_ACCEPT_LANGUAGE="en",
        REMOTE_ADDR=address,
    )


def page(shipment) -> str:
    return Client().get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_the_page_offers_the_brand_s_next_delivery_days_and_its_own_pickup_points(failed, shop, rival_shop):
    html = forms_page(Client(), failed)
    days = re.findall(r'name="date" value="([0-9-]+)"', html)
    # Weekdays only (the default), never today (Thursday 26th) or before.
    assert days == ["2026-11-27", "2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03"]
    assert "Corner Shop" in html and "3 High Street, N1 9GU London" in html and "09:00–17:30" in html
    assert "Rival Shop" not in html
    for secret in SECRETS:
        assert secret not in html


def test_a_brand_s_delivery_days_decide_the_days_offered(brand, failed):
    brand.delivery_days = [5]  # Saturdays only
    brand.save()
    assert choices.offered_days(brand, dt.date(2026, 11, 26), count=2) == [dt.date(2026, 11, 28), dt.date(2026, 12, 5)]
    html = forms_page(Client(), failed)
    assert re.findall(r'name="date" value="([0-9-]+)"', html)[:2] == ["2026-11-28", "2026-12-05"]


def test_a_new_day_reaches_the_api_the_manifest_the_webhook_outbox_the_admin_and_the_page(
    client, brand, failed, django_capture_on_commit_callbacks
):
    brand.webhook_url = "https://hooks.acme.example/parcels"
    brand.save()
    driver = Driver.objects.create(brand=brand, ref="van-7")
    route = Route.objects.create(driver=driver, date=dt.date(2026, 11, 30))
    Stop.objects.create(route=route, shipment=failed, sequence=1)
    version = failed.version

    with django_capture_on_commit_callbacks(execute=True):
        response = choose(client, failed, kind="new_day", date="2026-11-30")
    assert response.status_code == 303
    assert response["Location"] == failed.get_absolute_url() + "#status"

    choice = DeliveryChoice.objects.get(shipment=failed)
    assert (choice.kind, choice.date, choice.detail, choice.pickup_point) == (
        "new_day",
        dt.date(2026, 11, 30),
        "",
        None,
    )
    assert Shipment.objects.get(pk=failed.pk).version > version
    expected = {
        "kind": "new_day",
        "detail": "",
        "date": "2026-11-30",
        "pickup_point": None,
        "updated_at": choice.updated_at.isoformat().replace("+00:00", "Z"),
    }

    api = Api(Client(), keys.create_api_key(brand=brand, name="t")[1])
    detail = api.get(f"/shipments/{failed.tracking_number}").json()
    assert _iso(detail["delivery_choice"]) == _iso(expected)
    [stop] = api.get("/routes/van-7/2026-11-30").json()["stops"]
    assert _iso(stop["delivery_choice"]) == _iso(expected)

    notice = Notice.objects.get(shipment=failed, kind=NoticeKind.DELIVERY_CHOICE_UPDATED)
    notices.plan_notices(notice_ids=[notice.pk])
    webhook = Notification.objects.get(notice=notice, channel=Channel.WEBHOOK)
    body = json.loads(webhook.body)
    assert body["type"] == "shipment.delivery_choice_updated"
    assert body["data"]["tracking_number"] == failed.tracking_number
    assert body["data"]["delivery_choice"]["date"] == "2026-11-30"

    staff = Client()
    staff.force_login(brand_staff(brand))
    admin = staff.get(f"/admin/shipments/shipment/{failed.pk}/change/").content.decode()
    assert "Customer&#x27;s delivery choice" in admin or "Customer's delivery choice" in admin
    assert "A new day" in admin

    html = page(failed)
    assert "We&#x27;ll bring it on Mon 30 Nov." in html
    assert "Your choice" in html  # on the timeline
    for secret in SECRETS:
        assert secret not in html


def _iso(choice: dict) -> dict:
    """The choice with its moment as one instant, whatever its spelling."""
    return {**choice, "updated_at": dt.datetime.fromisoformat(choice["updated_at"].replace("Z", "+00:00"))}


def test_the_same_choice_again_changes_nothing_and_says_so(client, failed):
    assert choose(client, failed, kind="safe_place", safe_place="Behind the  side gate").status_code == 303
    version = Shipment.objects.get(pk=failed.pk).version
    again = choose(client, failed, kind="safe_place", safe_place="Behind the side gate")
    assert again.status_code == 200
    assert "You had already chosen this, so nothing has changed." in again.content.decode()
    assert Shipment.objects.get(pk=failed.pk).version == version
    assert Notice.objects.filter(shipment=failed, kind=NoticeKind.DELIVERY_CHOICE_UPDATED).count() == 1
    # A different choice replaces it, and is news.
    assert choose(client, failed, kind="neighbour", neighbour="Sam Patel, number 14").status_code == 303
    assert DeliveryChoice.objects.get(shipment=failed).detail == "Sam Patel, number 14"
    assert Notice.objects.filter(shipment=failed, kind=NoticeKind.DELIVERY_CHOICE_UPDATED).count() == 2
    assert "your neighbour: Sam Patel, number 14" in page(failed)


def test_a_pickup_point_choice_names_the_point_and_the_hold(client, failed, shop):
    assert choose(client, failed, kind="pickup_point", pickup_point=str(shop.pk)).status_code == 303
    choice = DeliveryChoice.objects.get(shipment=failed)
    assert choice.pickup_point == shop
    assert choices.hold_of(Shipment.objects.get(pk=failed.pk)).pickup_point == shop
    assert "We&#x27;ll take it to Corner Shop for you to collect." in page(failed)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "new_day", "date": "2026-11-26"}, "That day is not one we can deliver on."),  # today
        ({"kind": "new_day", "date": "2026-11-25"}, "That day is not one we can deliver on."),  # past
        ({"kind": "new_day", "date": "2026-11-28"}, "That day is not one we can deliver on."),  # a Saturday
        ({"kind": "new_day", "date": "not a day"}, "Enter a valid date."),
        ({"kind": "new_day"}, "Please choose a day."),
        ({"kind": "safe_place", "safe_place": "x" * 201}, "Please keep it to 200 characters (it has 201)."),
        ({"kind": "safe_place", "safe_place": "   "}, "Please say where the driver should leave it."),
        ({"kind": "neighbour"}, "Please give your neighbour"),
        ({"kind": "pickup_point", "pickup_point": "abc"}, "Enter a whole number."),
        ({"kind": "teleport"}, "Select a valid choice."),
    ],
)
def test_bad_input_gets_a_clear_answer_and_changes_nothing(client, failed, data, message):
    response = choose(client, failed, **data)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not DeliveryChoice.objects.filter(shipment=failed).exists()
    assert not Notice.objects.filter(shipment=failed).exists()


def test_another_brand_s_pickup_point_is_refused(client, failed, rival_shop):
    response = choose(client, failed, kind="pickup_point", pickup_point=str(rival_shop.pk))
    assert response.status_code == 400
    assert "Please choose one of the pickup points shown." in response.content.decode()
    assert not DeliveryChoice.objects.filter(shipment=failed).exists()


def test_no_choice_once_the_parcel_is_not_waiting_for_one(client, failed):
    services.record_event(shipment_id=failed.pk, event=event("out_for_delivery", 90))
    response = choose(client, failed, kind="new_day", date="2026-11-27")
    assert response.status_code == 409
    assert "no longer waiting for a new delivery" in response.content.decode()
    assert not DeliveryChoice.objects.filter(shipment=failed).exists()


def test_a_refused_parcel_offers_no_choice(make_shipment):
    shipment = make_shipment()
    services.record_event(shipment_id=shipment.pk, event=event("failed_attempt", 60, substatus="refused"))
    html = forms_page(Client(), shipment)
    assert 'id="delivery-choice"' not in html


def test_choices_are_rate_limited_per_link(client, failed):
    for _ in range(CHOICE_LINK_LIMIT.amount):
        limiter.hit(CHOICE_LINK_LIMIT, failed.public_token)
    response = choose(client, failed, kind="new_day", date="2026-11-27", address="10.9.0.77")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert not DeliveryChoice.objects.filter(shipment=failed).exists()


def test_the_form_checks_csrf(failed):
    response = Client(enforce_csrf_checks=True).post(
        failed.get_absolute_url() + "choice/", {"kind": "new_day", "date": "2026-11-27"}
    )
    assert response.status_code == 403
    assert not DeliveryChoice.objects.filter(shipment=failed).exists()


def test_the_forms_work_for_a_customer_with_csrf(failed):
    client = Client(enforce_csrf_checks=True)
    assert choose(client, failed, kind="new_day", date="2026-11-27").status_code == 303


def test_pickup_points_are_unique_per_brand_and_checked(brand):
    with pytest.raises(choices.PickupPointRefused):
        choices.create_pickup_point(brand=brand, name="Bad", line1="1 A St", city="X", opening_hours=[{"day": 9}])
    choices.create_pickup_point(brand=brand, name="Twice", line1="1 A St", city="X")
    with pytest.raises(choices.PickupPointRefused):
        choices.create_pickup_point(brand=brand, name="Twice", line1="2 B St", city="Y")
    assert PickupPoint.objects.filter(brand=brand).count() == 1
