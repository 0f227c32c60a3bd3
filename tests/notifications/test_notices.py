"""Notices (changes other than a status change) reach the brand's webhook,
once: notifications/notices.py, fed by shipments/customer.py."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from notifications import notices, sending, sweep, tasks
from notifications.models import BrandNotificationSettings, Channel, Notification, State, WebhookAttempt
from shipments import customer
from shipments import services as shipment_services
from shipments.models import Notice

from ..conftest import T0, event
from .test_transports import FakeEndpoint

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(autouse=True)
def local_webhooks(settings):
    # The brand's endpoint in these tests is a listener on 127.0.0.1.
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def endpoint(brand):
    with FakeEndpoint([]) as served:
        brand.webhook_url, brand.webhook_secret = served.url, SECRET
        brand.save()
        yield served


@pytest.fixture
def in_transit(shipment):
    shipment_services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    Notification.objects.all().delete()
    return shipment


def leave(shipment, text):
    customer.leave_delivery_instructions(shipment_id=shipment.pk, instructions=text)
    return Notice.objects.filter(shipment=shipment).latest("pk")


# An hour after its events, so that no alert (stuck) opens and is announced too.
@time_machine.travel(T0 + timedelta(hours=1), tick=False)
def test_instructions_left_on_the_page_reach_the_brand_as_one_signed_webhook(
    in_transit, endpoint, eager_celery, django_capture_on_commit_callbacks
):
    shipment = in_transit
    client = Client(enforce_csrf_checks=True)
    html = client.get(shipment.get_absolute_url() + "actions/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            shipment.get_absolute_url() + "instructions/",
            {"instructions": "  Leave it in the porch, please  ", "csrfmiddlewaretoken": token},
        )
        # Nothing leaves before the change commits.
        assert endpoint.received == []
    assert response.status_code == 303

    [(_path, headers, body)] = endpoint.received
    payload = Webhook(SECRET).verify(body, headers)
    shipment.refresh_from_db()
    assert payload["type"] == "shipment.instructions_updated"
    assert payload["data"]["tracking_number"] == shipment.tracking_number
    assert payload["data"]["delivery_instructions"] == {
        "text": "Leave it in the porch, please",
        "updated_at": shipment.delivery_instructions_at.isoformat(),
    }
    notice = Notice.objects.get(shipment=shipment)
    assert notice.processed_at is not None
    notification = Notification.objects.get(notice=notice)
    assert (notification.channel, notification.state, notification.status_change_id) == (
        Channel.WEBHOOK,
        State.SENT,
        None,
    )
    assert headers["webhook-id"] == f"msg_notification_{notification.pk}"
    assert WebhookAttempt.objects.filter(notification=notification, succeeded=True).count() == 1
    assert notification.about == "Delivery instructions updated"


def test_the_notice_is_written_in_the_change_s_transaction_and_only_when_the_text_changes(in_transit):
    notice = leave(in_transit, "Back door")
    assert notice.kind == "instructions_updated"
    assert notice.data["text"] == "Back door"
    assert notice.data["tracking_number"] == in_transit.tracking_number
    assert notice.processed_at is None
    leave(in_transit, "Back door ")  # the same text again is not news
    assert Notice.objects.filter(shipment=in_transit).count() == 1
    leave(in_transit, "")  # clearing them is
    assert Notice.objects.filter(shipment=in_transit).count() == 2


def test_a_refused_change_writes_no_notice(in_transit):
    shipment_services.record_event(shipment_id=in_transit.pk, event=event("out_for_delivery", 5))
    with pytest.raises(customer.ActionRefused):
        customer.leave_delivery_instructions(shipment_id=in_transit.pk, instructions="Too late")
    assert not Notice.objects.exists()


def test_planning_twice_plans_once(in_transit, endpoint):
    notice = leave(in_transit, "Ring twice")
    first = notices.plan_notices(notice_ids=[notice.pk])
    Notice.objects.filter(pk=notice.pk).update(processed_at=None)  # as if the stamp were lost
    second = notices.plan_notices(notice_ids=[notice.pk])
    third = notices.plan_notices(notice_ids=[notice.pk])
    assert Notification.objects.filter(notice=notice).count() == 1
    assert first == second == third == [Notification.objects.get(notice=notice).pk]

    tasks.plan_notices_task.apply(args=([notice.pk],))
    tasks.plan_notices_task.apply(args=([notice.pk],))  # a redelivered task
    assert len(endpoint.received) == 1


def test_a_lost_enqueue_is_picked_up_by_the_sweep(
    in_transit, endpoint, eager_celery, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    def broker_down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(tasks.plan_notices_task, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notice = leave(in_transit, "Garage")
    assert callbacks  # the announcement ran, and its enqueue failed quietly
    assert "the sweep will pick them up" in caplog.text
    assert Notice.objects.get(pk=notice.pk).processed_at is None
    assert endpoint.received == []
    assert notices.unplanned() == []  # too fresh: its task may still be on the way
    monkeypatch.undo()

    Notice.objects.filter(pk=notice.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert [pk for pk, _at in notices.unplanned()] == [notice.pk]
    assert tasks.sweep_task.apply().get() == {"plans": 0, "notices": 1, "sends": 0}

    [(_path, headers, body)] = endpoint.received
    assert Webhook(SECRET).verify(body, headers)["data"]["delivery_instructions"]["text"] == "Garage"
    assert notices.unplanned() == []
    tasks.sweep_task.apply()
    assert len(endpoint.received) == 1


def test_a_brand_without_a_webhook_url_gets_nothing_and_the_notice_is_processed(in_transit, brand):
    assert not brand.webhook_url
    notice = leave(in_transit, "Side gate")
    assert notices.plan_notices(notice_ids=[notice.pk]) == []
    assert not Notification.objects.exists()
    assert Notice.objects.get(pk=notice.pk).processed_at is not None


def test_a_brand_can_leave_a_kind_of_notice_out_of_its_webhook(in_transit, endpoint, brand):
    assert BrandNotificationSettings(brand=brand).webhook_notices == [
        "instructions_updated",
        "alert_opened",
        "alert_resolved",
        "alert_updated",
        "eta_changed",
        "delivery_choice_updated",
    ]
    BrandNotificationSettings.objects.create(brand=brand, webhook_notices=[])
    notice = leave(in_transit, "Side gate")
    assert notices.plan_notices(notice_ids=[notice.pk]) == []
    assert not Notification.objects.exists()
    assert Notice.objects.get(pk=notice.pk).processed_at is not None


def test_a_failed_notice_webhook_is_retried_by_the_sweep_like_any_other(in_transit, brand):
    with FakeEndpoint([503, 200]) as served:
        brand.webhook_url, brand.webhook_secret = served.url, SECRET
        brand.save()
        notice = leave(in_transit, "Porch")
        tasks.plan_notices_task.apply(args=([notice.pk],))
        notification = Notification.objects.get(notice=notice)
        assert notification.state == State.QUEUED
        Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
        assert notification.pk in sweep.sweep().due_notification_ids
        sending.send_notification(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.state == State.SENT
    assert [h["webhook-id"] for _p, h, _b in served.received] == [f"msg_notification_{notification.pk}"] * 2
    assert served.received[0][2] == served.received[1][2]  # the same bytes on the retry


def test_exactly_one_of_status_change_and_notice_is_set(in_transit):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(shipment=in_transit, channel=Channel.WEBHOOK, recipient="https://x.example/")
    notice = leave(in_transit, "Porch")
    change = shipment_services.record_event(shipment_id=in_transit.pk, event=event("out_for_delivery", 5)).status_change
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(
            shipment=in_transit, status_change=change, notice=notice, channel=Channel.WEBHOOK, recipient="x"
        )


def test_the_admin_shows_a_notice_message_on_the_log_and_the_shipment_page(
    in_transit, endpoint, eager_celery, django_capture_on_commit_callbacks, client
):
    from django.contrib.auth import get_user_model

    with django_capture_on_commit_callbacks(execute=True):
        notice = leave(in_transit, "Side door")
    message = Notification.objects.get(notice=notice)
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    for url, shown in (
        ("/admin/notifications/notification/", "Delivery instructions updated"),
        (f"/admin/notifications/notification/{message.pk}/change/", "instructions_updated"),
        (f"/admin/shipments/shipment/{in_transit.pk}/change/", "Delivery instructions updated"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert shown in response.content.decode(), url


def test_settings_that_hear_alerts_opening_hear_them_updated_after_the_migration(brand, other_brand):
    import importlib

    from django.apps import apps as django_apps

    BrandNotificationSettings.objects.create(brand=brand, webhook_notices=["instructions_updated", "alert_opened"])
    BrandNotificationSettings.objects.create(brand=other_brand, webhook_notices=["instructions_updated"])
    migration = importlib.import_module("notifications.migrations.0008_alert_updated_webhooks_for_existing_settings")

    migration.hear_alert_updates(django_apps, None)
    migration.hear_alert_updates(django_apps, None)  # run twice: the same result

    lists = dict(BrandNotificationSettings.objects.values_list("brand__slug", "webhook_notices"))
    assert lists == {
        brand.slug: ["instructions_updated", "alert_opened", "alert_updated"],
        other_brand.slug: ["instructions_updated"],
    }
