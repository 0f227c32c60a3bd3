"""Staff actions on a customer's delivery choice and pickup hold
(shipments/admin_choices.py through shipments/choices.py): cancel the
choice with a reason, extend or end the hold; each audited, scoped to the
staff user's brands, CSRF-checked, and harmless when repeated."""

import datetime as dt
import json

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from notifications import notices
from notifications.models import Channel, Notification
from shipments import choices, keys, services
from shipments.models import DeliveryChoice, Driver, Notice, NoticeKind, PickupHold, Route, Shipment, Stop
from tests.conftest import T0, event
from tests.shipments.admin_helpers import brand_staff
from tests.shipments.api_helpers import Api

pytestmark = pytest.mark.django_db(transaction=True)

NOW = T0 + dt.timedelta(hours=2)
TODAY = NOW.date()
DAY = dt.date(2026, 11, 30)


@pytest.fixture(autouse=True)
def at_ten():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def hooked(brand):
    brand.webhook_url = "https://hooks.acme.example/parcels"
    brand.save()
    return brand


@pytest.fixture
def shop(brand):
    return choices.create_pickup_point(brand=brand, name="Corner Shop", line1="3 High Street", city="London")


@pytest.fixture
def failed(hooked, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 30))
    services.record_event(shipment_id=shipment.pk, event=event("failed_attempt", 60, substatus="recipient_unavailable"))
    driver = Driver.objects.create(brand=hooked, ref="van-7")
    Stop.objects.create(route=Route.objects.create(driver=driver, date=DAY), shipment=shipment, sequence=1)
    return Shipment.objects.get(pk=shipment.pk)


@pytest.fixture
def chosen(failed):
    choices.choose_delivery(shipment_id=failed.pk, kind="safe_place", detail="Behind the side gate", today=TODAY)
    Notice.objects.filter(shipment=failed).update(processed_at=NOW)
    return Shipment.objects.get(pk=failed.pk)


@pytest.fixture
def held(failed, shop):
    choices.set_pickup_hold(shipment=failed, pickup_point=shop, collection_code="K7Q2", collect_by=dt.date(2026, 12, 3))
    return Shipment.objects.get(pk=failed.pk)


@pytest.fixture
def staff(brand):
    client = Client(enforce_csrf_checks=True)
    client.force_login(brand_staff(brand))
    return client


def url(name, shipment):
    return reverse(f"admin:shipments_shipment_{name}", args=[shipment.pk])


def post_form(client, address, data):
    """GET the form page, then POST it with the page's CSRF token, as a
    browser does."""
    page = client.get(address)
    assert page.status_code == 200, page.content
    token = page.context["csrf_token"]
    return client.post(address, {**data, "csrfmiddlewaretoken": str(token)})


def post_again(client, address, data):
    """The same POST once more, with the token the browser still holds."""
    return client.post(address, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def manifest_choice(brand):
    api = Api(Client(), keys.create_api_key(brand=brand, name="t")[1])
    [stop] = api.get(f"/routes/van-7/{DAY.isoformat()}").json()["stops"]
    return stop["delivery_choice"]


def choice_webhooks(shipment):
    found = list(Notice.objects.filter(shipment=shipment, kind=NoticeKind.DELIVERY_CHOICE_UPDATED, processed_at=None))
    notices.plan_notices(notice_ids=[notice.pk for notice in found])
    return [
        json.loads(row.body)
        for row in Notification.objects.filter(notice__in=found, channel=Channel.WEBHOOK).order_by("pk")
    ]


def test_the_admin_page_links_to_the_staff_actions(staff, chosen, shop):
    choices.set_pickup_hold(shipment=chosen, pickup_point=shop)
    html = staff.get(f"/admin/shipments/shipment/{chosen.pk}/change/").content.decode()
    for name in ("cancel_choice", "extend_hold", "end_hold"):
        assert f'href="{url(name, chosen)}"' in html


def test_cancelling_a_choice_drops_it_everywhere_tells_the_brand_once_and_is_audited(staff, brand, chosen):
    assert manifest_choice(brand)["kind"] == "safe_place"
    before = Client().get(chosen.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Behind the side gate" in before and "Your choice" in before
    version = chosen.version
    response = post_form(staff, url("cancel_choice", chosen), {"reason": "The side gate is locked"})
    assert response.status_code == 302 and response["Location"].endswith(f"/shipment/{chosen.pk}/change/")

    assert not DeliveryChoice.objects.filter(shipment=chosen).exists()
    assert Shipment.objects.get(pk=chosen.pk).version > version
    assert manifest_choice(brand) is None
    page = Client().get(chosen.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Behind the side gate" not in page and "Your choice" not in page
    [webhook] = choice_webhooks(chosen)
    assert webhook["type"] == "shipment.delivery_choice_updated" and webhook["data"]["delivery_choice"] is None
    [entry] = LogEntry.objects.filter(object_id=str(chosen.pk))
    audited = "Cancelled the customer's delivery choice (safe_place): The side gate is locked"
    assert audited in entry.get_change_message()

    # Again (a second tab, a double click): nothing to cancel, nothing sent.
    again = post_again(staff, url("cancel_choice", chosen), {"reason": "again"})
    assert again.status_code == 302
    assert choice_webhooks(chosen) == []
    assert LogEntry.objects.filter(object_id=str(chosen.pk)).count() == 1


def test_the_customer_can_choose_again_after_a_cancel(staff, chosen):
    post_form(staff, url("cancel_choice", chosen), {"reason": "Gate locked"})
    outcome = choices.choose_delivery(shipment_id=chosen.pk, kind="neighbour", detail="Sam, number 14", today=TODAY)
    assert outcome.changed and outcome.choice.kind == "neighbour"


def test_a_cancel_needs_a_reason(staff, chosen):
    response = post_form(staff, url("cancel_choice", chosen), {"reason": "   "})
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    assert DeliveryChoice.objects.filter(shipment=chosen).exists()
    assert choice_webhooks(chosen) == []


def test_cancelling_a_pickup_point_choice_takes_the_hold_it_made_but_not_the_brand_s(staff, failed, shop):
    choices.choose_delivery(shipment_id=failed.pk, kind="pickup_point", pickup_point_id=shop.pk, today=TODAY)
    assert PickupHold.objects.filter(shipment=failed, collection_code="").exists()
    post_form(staff, url("cancel_choice", failed), {"reason": "Shop closed for refit"})
    assert not PickupHold.objects.filter(shipment=failed).exists()

    choices.choose_delivery(shipment_id=failed.pk, kind="pickup_point", pickup_point_id=shop.pk, today=TODAY)
    choices.set_pickup_hold(shipment=failed, pickup_point=shop, collection_code="K7Q2")
    post_form(staff, url("cancel_choice", failed), {"reason": "Changed their mind by phone"})
    assert PickupHold.objects.get(shipment=failed).collection_code == "K7Q2"


def test_extending_a_hold_moves_the_deadline_once_and_is_audited(staff, held):
    version = held.version
    response = post_form(staff, url("extend_hold", held), {"collect_by": "2026-12-10"})
    assert response.status_code == 302
    hold = PickupHold.objects.get(shipment=held)
    assert hold.collect_by == dt.date(2026, 12, 10)
    assert Shipment.objects.get(pk=held.pk).version == version + 1
    assert "Extended the pickup hold to 2026-12-10" in LogEntry.objects.get(object_id=str(held.pk)).get_change_message()
    api = Api(Client(), keys.create_api_key(brand=held.brand, name="t")[1])
    assert api.get(f"/shipments/{held.tracking_number}").json()["pickup"]["collect_by"] == "2026-12-10"

    again = post_again(staff, url("extend_hold", held), {"collect_by": "2026-12-10"})
    assert again.status_code == 302
    assert Shipment.objects.get(pk=held.pk).version == version + 1
    assert LogEntry.objects.filter(object_id=str(held.pk)).count() == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-12-01", "Choose a day after today and after the current one."),  # earlier than 3 Dec
        ("2026-11-26", "Choose a day after today and after the current one."),  # today
        ("next week", "Enter a valid date."),
        ("", "This field is required."),
    ],
)
def test_a_bad_extension_is_a_form_error_and_changes_nothing(staff, held, value, message):
    response = post_form(staff, url("extend_hold", held), {"collect_by": value})
    assert response.status_code == 400 and message in response.content.decode()
    assert PickupHold.objects.get(shipment=held).collect_by == dt.date(2026, 12, 3)
    assert not LogEntry.objects.filter(object_id=str(held.pk)).exists()


def test_ending_a_hold_takes_it_off_the_page_and_the_api_once(staff, held):
    services.record_event(shipment_id=held.pk, event=event("available_for_pickup", 120))
    page = Client().get(held.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "K7Q2" in page and "Corner Shop" in page
    response = post_form(staff, url("end_hold", held), {"reason": "Collected at the counter"})
    assert response.status_code == 302
    assert not PickupHold.objects.filter(shipment=held).exists()
    page = Client().get(held.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "K7Q2" not in page
    api = Api(Client(), keys.create_api_key(brand=held.brand, name="t")[1])
    assert api.get(f"/shipments/{held.tracking_number}").json()["pickup"] is None
    [entry] = LogEntry.objects.filter(object_id=str(held.pk))
    assert "Ended the pickup hold at Corner Shop, London: Collected at the counter" in entry.get_change_message()
    version = Shipment.objects.get(pk=held.pk).version
    assert post_again(staff, url("end_hold", held), {"reason": "again"}).status_code == 302
    assert Shipment.objects.get(pk=held.pk).version == version
    assert LogEntry.objects.filter(object_id=str(held.pk)).count() == 1


@pytest.mark.parametrize("name", ["cancel_choice", "extend_hold", "end_hold"])
def test_another_brand_s_staff_get_404_and_change_nothing(other_brand, chosen, shop, name):
    choices.set_pickup_hold(shipment=chosen, pickup_point=shop, collect_by=dt.date(2026, 12, 3))
    outsider = Client()
    outsider.force_login(brand_staff(other_brand, username="outsider"))
    data = {"reason": "mine now", "collect_by": "2026-12-20"}
    assert outsider.get(url(name, chosen)).status_code == 404
    assert outsider.post(url(name, chosen), data).status_code == 404
    assert DeliveryChoice.objects.filter(shipment=chosen).exists()
    assert PickupHold.objects.get(shipment=chosen).collect_by == dt.date(2026, 12, 3)


@pytest.mark.parametrize("name", ["cancel_choice", "extend_hold", "end_hold"])
def test_view_only_staff_get_403_and_change_nothing(brand, chosen, shop, name):
    choices.set_pickup_hold(shipment=chosen, pickup_point=shop, collect_by=dt.date(2026, 12, 3))
    viewer = brand_staff(brand, username="viewer")
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client = Client()
    client.force_login(viewer)
    assert client.get(url(name, chosen)).status_code == 403
    assert client.post(url(name, chosen), {"reason": "x", "collect_by": "2026-12-20"}).status_code == 403
    assert DeliveryChoice.objects.filter(shipment=chosen).exists()
    assert PickupHold.objects.filter(shipment=chosen).exists()


@pytest.mark.parametrize("name", ["cancel_choice", "extend_hold", "end_hold"])
def test_a_post_without_the_csrf_token_is_refused(staff, chosen, shop, name):
    choices.set_pickup_hold(shipment=chosen, pickup_point=shop, collect_by=dt.date(2026, 12, 3))
    response = staff.post(url(name, chosen), {"reason": "x", "collect_by": "2026-12-20"})
    assert response.status_code == 403
    assert DeliveryChoice.objects.filter(shipment=chosen).exists()
    assert PickupHold.objects.get(shipment=chosen).collect_by == dt.date(2026, 12, 3)


def test_without_a_choice_or_hold_the_pages_say_so_and_send_nothing(staff, failed):
    for name in ("cancel_choice", "extend_hold", "end_hold"):
        response = staff.get(url(name, failed), follow=True)
        assert response.status_code == 200
        text = response.content.decode().replace("&#x27;", "'")
        assert "There is no delivery choice to cancel" in text or "not held at a pickup point" in text
    assert not Notice.objects.filter(shipment=failed, kind=NoticeKind.DELIVERY_CHOICE_UPDATED).exists()
