"""Staff's message to the customer from the "Needs attention" queue (a
customer_contacted Notice, planned by notifications/alert_messages.py),
the templates for alert topics, and the brand settings' alert defaults."""

import importlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications import notices, sending, tasks
from notifications.models import (
    BrandNotificationSettings,
    Channel,
    MessageTemplate,
    Notification,
    SmsOptOut,
    default_webhook_notices,
)
from shipments import alert_work, alerts
from shipments.alert_models import ContactTopic
from shipments.alert_rules import AlertKind
from shipments.models import Notice, NoticeKind

from ..conftest import T0

NOON = T0 + timedelta(hours=4)


@pytest.fixture
def agent_user(db):
    return get_user_model().objects.create_user("agent", "agent@example.com", "pw", is_staff=True)


@pytest.fixture
def webhook_brand(brand):
    brand.webhook_url = "https://hooks.acme.example/parcels"
    brand.save()
    # Settings saved with every notice kind ticked, as the defaults once
    # offered: the staff contact must still never be a webhook.
    BrandNotificationSettings.objects.create(brand=brand, webhook_notices=[k.value for k in NoticeKind])
    return brand


def contact(shipment, user, topic, channels):
    alert = alerts.open_alert(shipment=shipment, kind=AlertKind.STUCK, now=timezone.now())
    return alert_work.contact_customer(alert=alert, user=user, topic=topic, channels=channels)


@time_machine.travel(NOON, tick=False)
@pytest.mark.parametrize("channels", [["sms"], ["email"], ["sms", "email"]])
def test_staff_contact_goes_to_the_channels_chosen_once_each_and_never_to_the_webhook(
    shipment, agent_user, webhook_brand, channels, memory_sms, outbox
):
    notice = contact(shipment, agent_user, ContactTopic.LOOKING_INTO_IT, channels)

    due = notices.plan_notices(notice_ids=[notice.pk])
    Notice.objects.filter(pk=notice.pk).update(processed_at=None)  # a lost stamp: planned again
    assert notices.plan_notices(notice_ids=[notice.pk]) == due
    tasks.plan_notices_task.apply(args=([notice.pk],))
    tasks.plan_notices_task.apply(args=([notice.pk],))  # a redelivered task

    rows = Notification.objects.filter(notice=notice)
    assert sorted(rows.values_list("channel", flat=True)) == sorted(channels)
    assert Channel.WEBHOOK not in rows.values_list("channel", flat=True)
    assert len(memory_sms) == ("sms" in channels)
    assert len(outbox) == ("email" in channels)
    if memory_sms:
        assert memory_sms[0].body.startswith("Acme Parcels: we're looking into the delivery of your parcel LM000001.")
    if outbox:
        assert outbox[0].subject == "We're looking into your delivery"
        assert outbox[0].to == ["ada@example.com"]


def test_the_webhook_defaults_leave_the_staff_contact_out(db):
    assert default_webhook_notices() == [
        "instructions_updated",
        "alert_opened",
        "alert_resolved",
        "alert_updated",
        "eta_changed",
        "delivery_choice_updated",
    ]


@time_machine.travel(NOON, tick=False)
@pytest.mark.parametrize("topic", ContactTopic.values)
def test_each_topic_has_its_own_wording_in_the_customer_s_language(make_shipment, agent_user, topic):
    shipment = make_shipment(recipient_language="de")
    notice = contact(shipment, agent_user, topic, ["email"])
    notices.plan_notices(notice_ids=[notice.pk])
    email = Notification.objects.get(notice=notice)
    assert email.language == "de"
    assert email.body.startswith("Hallo Ada,")
    assert shipment.tracking_number in email.body


@time_machine.travel(NOON, tick=False)
def test_staff_contact_about_lateness_states_the_parcel_s_time_as_it_stands(make_shipment, agent_user):
    shipment = make_shipment(eta=NOON + timedelta(hours=1), promised_window_end=NOON - timedelta(hours=2))
    notice = contact(shipment, agent_user, ContactTopic.LATE, ["sms"])
    notices.plan_notices(notice_ids=[notice.pk])
    assert "Now expected Thu 26 Nov, 13:00." in Notification.objects.get(notice=notice).body


@time_machine.travel(NOON, tick=False)
def test_the_brand_s_topic_template_is_used(shipment, brand, agent_user):
    MessageTemplate.objects.create(
        brand=brand, status="redelivery", language="en", sms_text="$first_name: rebook $link"
    )
    notice = contact(shipment, agent_user, ContactTopic.REDELIVERY, ["sms"])
    notices.plan_notices(notice_ids=[notice.pk])
    assert Notification.objects.get(notice=notice).body == f"Ada: rebook {shipment.tracking_url}"


@time_machine.travel(NOON, tick=False)
def test_an_opted_out_phone_gets_no_sms_even_from_staff(shipment, agent_user, outbox):
    SmsOptOut.objects.create(phone=shipment.recipient_phone)
    notice = contact(shipment, agent_user, ContactTopic.REDELIVERY, ["sms", "email"])
    notices.plan_notices(notice_ids=[notice.pk])
    assert list(Notification.objects.filter(notice=notice).values_list("channel", flat=True)) == ["email"]


@time_machine.travel(datetime(2026, 11, 26, 22, 30, tzinfo=UTC), tick=False)
def test_quiet_hours_hold_the_staff_s_sms(shipment, agent_user, memory_sms, outbox):
    notice = contact(shipment, agent_user, ContactTopic.MISSED_SCAN, ["sms", "email"])
    for pk in notices.plan_notices(notice_ids=[notice.pk]):
        sending.send_notification(notification_id=pk)
    sms = Notification.objects.get(notice=notice, channel=Channel.SMS)
    assert sms.next_attempt_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert memory_sms == [] and len(outbox) == 1


@time_machine.travel(NOON, tick=False)
@pytest.mark.parametrize(
    "data",
    [
        {"alert_id": 1, "topic": "refund_everyone", "channels": ["sms"], "user_id": 1},
        {"alert_id": 1, "topic": None, "channels": ["sms"], "user_id": 1},
        {"alert_id": 1, "topic": "late", "channels": "sms", "user_id": 1},
        {"alert_id": 1, "topic": "late", "channels": ["fax", "webhook"], "user_id": 1},
        {"alert_id": 1, "topic": "late", "channels": [], "user_id": 1},
    ],
)
def test_a_staff_contact_that_names_no_topic_or_channel_plans_nothing_and_is_stamped(shipment, data, caplog):
    notice = Notice.objects.create(shipment=shipment, kind=NoticeKind.CUSTOMER_CONTACTED, data=data)
    with caplog.at_level(logging.INFO, logger="notifications.alert_messages"):
        assert notices.plan_notices(notice_ids=[notice.pk]) == []
    assert not Notification.objects.exists()
    assert Notice.objects.get(pk=notice.pk).processed_at is not None
    assert f"Notice {notice.pk}" in caplog.text


@time_machine.travel(NOON, tick=False)
def test_a_staff_contact_for_a_parcel_with_no_phone_or_email_plans_nothing(make_shipment, caplog):
    shipment = make_shipment(recipient_phone="", recipient_email="")
    notice = Notice.objects.create(
        shipment=shipment,
        kind=NoticeKind.CUSTOMER_CONTACTED,
        data={"alert_id": 1, "topic": "late", "channels": ["sms", "email"], "user_id": 1},
    )
    with caplog.at_level(logging.INFO, logger="notifications.alert_messages"):
        assert notices.plan_notices(notice_ids=[notice.pk]) == []
    assert Notice.objects.get(pk=notice.pk).processed_at is not None
    assert "no phone or email" in caplog.text


def test_a_notice_whose_planning_fails_stays_in_the_outbox_and_the_others_go_ahead(make_shipment, monkeypatch):
    from notifications import alert_messages

    first, second = make_shipment(), make_shipment()
    broken = Notice.objects.create(
        shipment=first, kind=NoticeKind.CUSTOMER_CONTACTED, data={"topic": "late", "channels": ["sms"]}
    )
    fine = Notice.objects.create(
        shipment=second, kind=NoticeKind.CUSTOMER_CONTACTED, data={"topic": "late", "channels": ["sms"]}
    )
    real = alert_messages.customer_rows

    def flaky(notice, now):
        if notice.pk == broken.pk:
            raise RuntimeError("the template store is down")
        return real(notice, now)

    monkeypatch.setattr(alert_messages, "customer_rows", flaky)
    notices.plan_notices(notice_ids=[broken.pk, fine.pk])
    assert Notice.objects.get(pk=broken.pk).processed_at is None
    assert Notice.objects.get(pk=fine.pk).processed_at is not None
    assert Notification.objects.filter(notice=fine).count() == 1


def test_settings_saved_before_alerts_hear_alert_webhooks_after_the_migration(brand, other_brand, make_shipment):
    from shipments.models import Brand

    third = Brand.objects.create(name="Third", slug="third")
    BrandNotificationSettings.objects.create(brand=brand, webhook_notices=["instructions_updated"])
    # Every kind there was when that migration was written.
    before = ["instructions_updated", "alert_opened", "alert_resolved", "customer_contacted"]
    BrandNotificationSettings.objects.create(brand=other_brand, webhook_notices=before)
    BrandNotificationSettings.objects.create(brand=third, webhook_notices=[])
    migration = importlib.import_module("notifications.migrations.0005_alert_webhooks_for_existing_settings")

    migration.hear_alerts(django_apps, None)
    migration.hear_alerts(django_apps, None)  # run twice: the same result

    lists = dict(BrandNotificationSettings.objects.values_list("brand__slug", "webhook_notices"))
    assert lists == {
        "acme": ["instructions_updated", "alert_opened", "alert_resolved"],
        "other": ["instructions_updated", "alert_opened", "alert_resolved"],
        "third": ["alert_opened", "alert_resolved"],
    }


@time_machine.travel(NOON, tick=False)
def test_the_message_log_says_what_each_alert_message_was_about(shipment, agent_user):
    notice = contact(shipment, agent_user, ContactTopic.REDELIVERY, ["sms"])
    opened = Notice.objects.get(kind=NoticeKind.ALERT_OPENED)
    odd = Notice.objects.create(shipment=shipment, kind=NoticeKind.ALERT_OPENED, data={"kind": ["late"]})
    about = {
        n.notice_id: n.about
        for n in [
            Notification(notice=notice, shipment=shipment),
            Notification(notice=opened, shipment=shipment),
            Notification(notice=odd, shipment=shipment),
        ]
    }
    assert about == {
        notice.pk: "Customer contacted by staff: Let's arrange a new delivery",
        opened.pk: "Alert opened: Stuck",
        odd.pk: "Alert opened",
    }


@time_machine.travel(NOON, tick=False)
def test_the_message_log_filters_by_kind_of_notice(client, shipment, agent_user):
    contact(shipment, agent_user, ContactTopic.REDELIVERY, ["sms"])
    notices.plan_notices(notice_ids=list(Notice.objects.values_list("pk", flat=True)))
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    url = "/admin/notifications/notification/"
    staff = client.get(url, {"notice__kind": "customer_contacted"}).content.decode()
    assert "Customer contacted by staff: Let&#x27;s arrange a new delivery" in staff
    assert "result_list" in staff
    assert "result_list" not in client.get(url, {"notice__kind": "alert_opened"}).content.decode()


@time_machine.travel(NOON, tick=False)
def test_with_notify_recipient_off_staff_reach_only_opted_in_addresses(shipment, brand, agent_user):
    from notifications.models import Subscription

    BrandNotificationSettings.objects.create(brand=brand, notify_recipient=False)
    Subscription.objects.create(shipment=shipment, channel="email", address="fan@example.com", source="tracking_page")
    notice = contact(shipment, agent_user, ContactTopic.LOOKING_INTO_IT, ["sms", "email"])
    notices.plan_notices(notice_ids=[notice.pk])
    assert list(Notification.objects.filter(notice=notice).values_list("channel", "recipient")) == [
        ("email", "fan@example.com")
    ]
