"""What an ``eta_changed`` notice (shipments/eta.py) is planned into: the
brand's webhook, with a payload like the other notices', and, only by the
brand's choice and past its threshold, the customer's message, at most
twice a parcel, once per notice."""

import json
import math
from datetime import timedelta

import pytest
import time_machine

from notifications import notices
from notifications.eta_messages import MAX_PER_PARCEL
from notifications.models import BrandNotificationSettings, Channel, Notification
from shipments import drivers, eta, eta_history
from shipments import services as shipment_services
from shipments.models import Notice, NoticeKind
from shipments.services import NewEvent

from ..conftest import T0

# Mid-morning: no SMS waits out the night.
NOW = T0 + timedelta(hours=3)
DEST = (51.5034, -0.1276)


def east(metres: float) -> tuple[float, float]:
    return DEST[0], DEST[1] + metres / (111_195 * math.cos(math.radians(DEST[0])))


@pytest.fixture(autouse=True)
def morning(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.ETA_CHANGED_MINUTES = 15
    eta_history.forget()
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def van(brand, make_shipment):
    brand.webhook_url = "http://127.0.0.1:9/hooks"
    brand.save()
    lat, lng = east(3000)
    shipment = make_shipment(destination_lat=lat, destination_lng=lng)
    shipment_services.record_event(
        shipment_id=shipment.pk,
        event=NewEvent(status="out_for_delivery", occurred_at=NOW - timedelta(hours=1), source="api", external_id="o"),
    )
    route = drivers.set_route(brand=brand, driver_ref="van-1", date=NOW.date(), tracking_numbers=["LM000001"])
    Notification.objects.all().delete()
    return route, shipment


def at_depot(brand, route, minutes):
    """The van still at the depot ``minutes`` on: every window slides."""
    moment = NOW + timedelta(minutes=minutes)
    drivers.record_locations(brand=brand, driver_ref="van-1", pings=[drivers.Ping(*DEST, moment)])
    eta.recompute_route(route_id=route.pk, now=moment)
    return moment


def plan_new():
    ids = list(Notice.objects.filter(kind=NoticeKind.ETA_CHANGED, processed_at=None).values_list("pk", flat=True))
    notices.plan_notices(notice_ids=ids)
    return ids


def test_a_moved_window_reaches_the_brands_webhook_and_no_customer_by_default(brand, van):
    route, shipment = van
    at_depot(brand, route, 0)
    with time_machine.travel(NOW + timedelta(minutes=30), tick=False):
        at_depot(brand, route, 30)
        [notice_id] = plan_new()
    [row] = Notification.objects.filter(notice_id=notice_id)
    assert row.channel == Channel.WEBHOOK
    payload = json.loads(row.body)
    assert payload["type"] == "shipment.eta_changed"
    shipment.refresh_from_db()
    assert payload["data"]["tracking_number"] == shipment.tracking_number
    assert payload["data"]["eta_window"] == {
        "start": shipment.computed_window_start.isoformat(),
        "end": shipment.computed_window_end.isoformat(),
    }
    assert payload["data"]["eta"] == shipment.computed_eta.isoformat()
    assert set(payload["data"]["previous_window"]) == {"start", "end"}
    # Nothing of where the parcel goes.
    assert "destination" not in row.body and "51.50" not in row.body


def test_by_the_brands_choice_the_customer_hears_at_most_twice(brand, van):
    BrandNotificationSettings.objects.create(brand=brand, eta_sms=True, eta_email=True, eta_change_minutes=15)
    route, _ = van
    at_depot(brand, route, 0)
    told = []
    for step in (1, 2, 3):
        with time_machine.travel(NOW + timedelta(minutes=30 * step), tick=False):
            at_depot(brand, route, 30 * step)
            [notice_id] = plan_new()
            told.append(sorted(Notification.objects.filter(notice_id=notice_id).values_list("channel", flat=True)))
    customer = sorted([Channel.EMAIL, Channel.SMS, Channel.WEBHOOK])
    assert told == [customer, customer, [Channel.WEBHOOK]]
    assert MAX_PER_PARCEL == 2
    sms = Notification.objects.filter(channel=Channel.SMS).first()
    assert sms.recipient == "+447700900123"
    assert "arrives between" in sms.body


def test_a_move_below_the_brands_threshold_tells_the_customer_nothing(brand, van):
    BrandNotificationSettings.objects.create(brand=brand, eta_sms=True, eta_change_minutes=60)
    route, _ = van
    at_depot(brand, route, 0)
    with time_machine.travel(NOW + timedelta(minutes=30), tick=False):
        at_depot(brand, route, 30)
        [notice_id] = plan_new()
    assert list(Notification.objects.filter(notice_id=notice_id).values_list("channel", flat=True)) == [Channel.WEBHOOK]


def test_a_notice_is_planned_once(brand, van):
    BrandNotificationSettings.objects.create(brand=brand, eta_sms=True)
    route, _ = van
    at_depot(brand, route, 0)
    with time_machine.travel(NOW + timedelta(minutes=30), tick=False):
        at_depot(brand, route, 30)
        [notice_id] = plan_new()
        notices.plan_notices(notice_ids=[notice_id])
        Notice.objects.filter(pk=notice_id).update(processed_at=None)
        notices.plan_notices(notice_ids=[notice_id])
    assert Notification.objects.filter(notice_id=notice_id, channel=Channel.SMS).count() == 1


def test_the_brands_eta_messages_are_set_in_the_admin(admin_client, brand):
    from django.urls import reverse

    add = reverse("admin:notifications_brandnotificationsettings_add")
    form = {"brand": brand.pk, "notify_recipient": "on", "eta_sms": "on", "eta_change_minutes": "20"}
    assert admin_client.post(add, form).status_code == 302
    saved = BrandNotificationSettings.objects.get(brand=brand)
    assert (saved.eta_sms, saved.eta_email, saved.eta_change_minutes) == (True, False, 20)
    # Below the floor: a form error, not a 500.
    saved.delete()
    response = admin_client.post(add, {**form, "eta_change_minutes": "1"})
    assert response.status_code == 200 and not BrandNotificationSettings.objects.exists()


def test_settings_saved_before_hear_eta_changes_after_the_migration(brand, other_brand):
    import importlib

    from django.apps import apps

    BrandNotificationSettings.objects.create(brand=brand, webhook_notices=["instructions_updated"])
    BrandNotificationSettings.objects.create(brand=other_brand, webhook_notices=["alert_opened", "eta_changed"])
    migration = importlib.import_module("notifications.migrations.0006_brand_eta_messages")
    migration.hear_eta_changes(apps, None)
    migration.hear_eta_changes(apps, None)  # twice: the same result
    lists = dict(BrandNotificationSettings.objects.values_list("brand__slug", "webhook_notices"))
    assert lists == {"acme": ["instructions_updated", "eta_changed"], "other": ["alert_opened", "eta_changed"]}
