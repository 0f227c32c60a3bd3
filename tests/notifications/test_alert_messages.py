"""The customer told first when a late or missed-scan alert opens
(notifications/alert_messages.py, planned by notifications/notices.py)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from notifications import alert_messages, notices, rules, sending, sweep, tasks
from notifications.defaults import TOPIC_TEXTS
from notifications.models import (
    BrandNotificationSettings,
    Channel,
    MessageTemplate,
    Notification,
    SmsOptOut,
    State,
    Subscription,
)
from notifications.sending import SendOutcome
from shipments import alerts
from shipments import services as shipment_services
from shipments.alert_models import Alert, AlertState
from shipments.alert_rules import AlertKind
from shipments.models import Notice, NoticeKind

from ..conftest import T0, event
from .test_transports import FakeEndpoint

# Thursday 26 November 2026, 12:00 in London (GMT).
NOON = T0 + timedelta(hours=4)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def iso(moment):
    return moment.isoformat() if moment else None


def open_late(shipment, *, eta=None, window_end=None, now=None):
    alert = alerts.open_alert(
        shipment=shipment,
        kind=AlertKind.LATE,
        now=now or timezone.now(),
        detail={"window_end": iso(window_end or timezone.now() - timedelta(hours=1)), "eta": iso(eta)},
    )
    return alert, Notice.objects.filter(kind=NoticeKind.ALERT_OPENED).latest("pk")


def open_alert_notice(shipment, kind, detail=None):
    alert = alerts.open_alert(shipment=shipment, kind=kind, now=timezone.now(), detail=detail or {})
    return alert, Notice.objects.filter(kind=NoticeKind.ALERT_OPENED).latest("pk")


def customer_messages(**filters):
    return {n.channel: n for n in Notification.objects.filter(**filters).exclude(channel=Channel.WEBHOOK)}


@time_machine.travel(NOON, tick=False)
def test_a_late_alert_tells_the_customer_once_per_channel_with_the_new_time(shipment):
    _alert, notice = open_late(shipment, eta=NOON + timedelta(hours=2, minutes=30))

    due = notices.plan_notices(notice_ids=[notice.pk])

    messages = customer_messages(notice=notice)
    assert set(messages) == {Channel.SMS, Channel.EMAIL}
    sms, email = messages[Channel.SMS], messages[Channel.EMAIL]
    assert due == [sms.pk, email.pk]  # the phone first
    assert (sms.recipient, email.recipient) == ("+447700900123", "ada@example.com")
    assert sms.body == (
        f"Acme Parcels: your parcel {shipment.tracking_number} is running late. "
        f"Now expected Thu 26 Nov, 14:30. {shipment.tracking_url}"
    )
    assert sms.segments == 1
    assert email.subject == "Your parcel is running late"
    assert "Now expected Thu 26 Nov, 14:30." in email.body
    assert Notice.objects.get(pk=notice.pk).processed_at is not None


@time_machine.travel(NOON, tick=False)
def test_the_new_time_is_in_the_recipient_s_zone(make_shipment):
    shipment = make_shipment(recipient_timezone="Europe/Berlin")
    _alert, notice = open_late(shipment, eta=NOON + timedelta(hours=2, minutes=30))
    notices.plan_notices(notice_ids=[notice.pk])
    assert "Now expected Thu 26 Nov, 15:30." in customer_messages(notice=notice)[Channel.SMS].body


@time_machine.travel(NOON, tick=False)
@pytest.mark.parametrize(
    ("eta", "window_end", "said"),
    [
        # The ETA ahead: it is the new time.
        (NOON + timedelta(hours=3), NOON - timedelta(hours=1), "Now expected Thu 26 Nov, 15:00."),
        # The ETA gone by too, a minute ago: no time is promised.
        (NOON - timedelta(minutes=1), NOON - timedelta(hours=1), "A new time will follow."),
        # No ETA, the window a minute gone: the window is not stated as the promise.
        (None, NOON - timedelta(minutes=1), "A new time will follow."),
        # No ETA, the window's end a minute ahead (the alert opened on a replayed clock): it still holds.
        (None, NOON + timedelta(minutes=1), "Now expected Thu 26 Nov, 12:01."),
    ],
)
def test_a_time_gone_by_is_never_stated_as_the_promise(shipment, eta, window_end, said):
    _alert, notice = open_late(shipment, eta=eta, window_end=window_end)
    notices.plan_notices(notice_ids=[notice.pk])
    messages = customer_messages(notice=notice)
    assert said in messages[Channel.SMS].body
    assert said in messages[Channel.EMAIL].body


def test_expected_after_takes_what_is_still_ahead():
    at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    second = timedelta(seconds=1)
    assert alert_messages.expected_after(at, eta=at + second, window_end=at + 2 * second) == at + second
    assert alert_messages.expected_after(at, eta=at, window_end=at + second) == at + second  # at is not ahead
    assert alert_messages.expected_after(at, eta=at - second, window_end=at) is None


@time_machine.travel(NOON, tick=False)
def test_a_missed_scan_says_we_are_checking(shipment):
    _alert, notice = open_alert_notice(shipment, AlertKind.MISSED_SCAN, {"stop_id": 1})
    notices.plan_notices(notice_ids=[notice.pk])
    messages = customer_messages(notice=notice)
    assert messages[Channel.SMS].body.startswith(
        f"Acme Parcels: we're checking on your parcel {shipment.tracking_number}"
    )
    assert messages[Channel.EMAIL].subject == "We're checking on your parcel"


@time_machine.travel(NOON, tick=False)
@pytest.mark.parametrize(
    ("language", "late_sms", "new_time", "missed_subject"),
    [
        ("es", "va con retraso", "Nueva hora prevista: 26 nov, 14:30.", "Estamos comprobando tu paquete"),
        ("de", "verspätet sich", "Jetzt erwartet: Do 26 Nov, 14:30.", "Wir prüfen, wo Ihr Paket ist"),
    ],
)
def test_the_messages_speak_the_recipient_s_language(make_shipment, language, late_sms, new_time, missed_subject):
    shipment = make_shipment(recipient_language=language)
    _alert, late = open_late(shipment, eta=NOON + timedelta(hours=2, minutes=30))
    _alert, missed = open_alert_notice(shipment, AlertKind.MISSED_SCAN)
    notices.plan_notices(notice_ids=[late.pk, missed.pk])
    sms = customer_messages(notice=late)[Channel.SMS]
    assert late_sms in sms.body and new_time in sms.body
    assert sms.language == language
    assert customer_messages(notice=missed)[Channel.EMAIL].subject == missed_subject


@pytest.mark.parametrize("language", ["en", "es", "de"])
@pytest.mark.parametrize("topic", sorted(TOPIC_TEXTS))
def test_every_built_in_sms_fits_one_segment_with_a_real_link(make_shipment, brand, topic, language):
    from notifications import content

    # A twelve-letter brand, a ten-character tracking number, the portal's
    # own link, and a Saturday in the new time (Spanish "sáb" is not GSM-7).
    shipment = make_shipment(tracking_number="LM00012345", recipient_language=language)
    saturday = datetime(2026, 11, 28, 14, 30, tzinfo=UTC)
    window = alert_messages.window_text(shipment, language, saturday) if topic == "late" else ""
    sms = rules.prepare_sms(content.texts_for(shipment, topic, language, window=window).sms)
    assert (sms.encoding, sms.segments) == ("GSM-7", 1), sms.text


@time_machine.travel(NOON, tick=False)
def test_the_brand_s_template_overrides_the_wording(shipment, brand):
    MessageTemplate.objects.create(
        brand=brand, status="late", language="en", sms_text="$first_name, $brand is late. $window ($status)"
    )
    _alert, notice = open_late(shipment, eta=NOON + timedelta(hours=1))
    notices.plan_notices(notice_ids=[notice.pk])
    messages = customer_messages(notice=notice)
    assert messages[Channel.SMS].body == "Ada, Acme Parcels is late. Now expected Thu 26 Nov, 13:00. (Running late)"
    assert messages[Channel.EMAIL].subject == "Your parcel is running late"  # the template left it empty


# 22:30 in London: quiet hours.
@time_machine.travel(datetime(2026, 11, 26, 22, 30, tzinfo=UTC), tick=False)
def test_quiet_hours_hold_the_sms_till_eight_and_it_promises_no_time_gone_by_then(shipment, memory_sms, outbox):
    now = timezone.now()
    _alert, notice = open_late(shipment, eta=now + timedelta(hours=1))

    due = notices.plan_notices(notice_ids=[notice.pk])

    messages = customer_messages(notice=notice)
    sms, email = messages[Channel.SMS], messages[Channel.EMAIL]
    assert due == [email.pk]  # the email is not held
    assert sms.next_attempt_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    # By 08:00 the 23:30 estimate has gone by; the email, read now, has it.
    assert "A new time will follow." in sms.body
    assert "Now expected Thu 26 Nov, 23:30." in email.body
    # A send that comes early (a retry, the sweep) holds it again.
    Notification.objects.filter(pk=sms.pk).update(next_attempt_at=now)
    assert sending.send_notification(notification_id=sms.pk).outcome == SendOutcome.HELD
    assert memory_sms == []
    with time_machine.travel(datetime(2026, 11, 27, 8, 0, 1, tzinfo=UTC), tick=False):
        assert sending.send_notification(notification_id=sms.pk).outcome == SendOutcome.SENT
    assert [m.to for m in memory_sms] == ["+447700900123"]


@time_machine.travel(NOON, tick=False)
def test_an_opted_out_phone_and_an_unsubscribed_email_hear_nothing(shipment):
    SmsOptOut.objects.create(phone=shipment.recipient_phone)
    Subscription.objects.create(
        shipment=shipment, channel="email", address="ada@example.com", source="recipient", active=False
    )
    _alert, notice = open_late(shipment)
    assert notices.plan_notices(notice_ids=[notice.pk]) == []
    assert not Notification.objects.exists()
    assert Notice.objects.get(pk=notice.pk).processed_at is not None


@time_machine.travel(NOON, tick=False)
def test_with_notify_recipient_off_only_opted_in_addresses_hear(shipment, brand):
    BrandNotificationSettings.objects.create(brand=brand, notify_recipient=False)
    Subscription.objects.create(shipment=shipment, channel="sms", address="+447700900999", source="tracking_page")
    _alert, notice = open_alert_notice(shipment, AlertKind.MISSED_SCAN)
    notices.plan_notices(notice_ids=[notice.pk])
    assert list(Notification.objects.values_list("channel", "recipient")) == [("sms", "+447700900999")]


@time_machine.travel(NOON, tick=False)
def test_the_brand_chooses_which_alerts_go_by_which_channel(make_shipment, brand):
    assert BrandNotificationSettings(brand=brand).alert_sms == ["late", "missed_scan"]
    assert BrandNotificationSettings(brand=brand).alert_email == ["late", "missed_scan"]
    BrandNotificationSettings.objects.create(brand=brand, alert_sms=[], alert_email=["missed_scan"])
    _alert, late = open_late(make_shipment())
    _alert, missed = open_alert_notice(make_shipment(), AlertKind.MISSED_SCAN)
    notices.plan_notices(notice_ids=[late.pk, missed.pk])
    assert list(Notification.objects.values_list("notice", "channel")) == [(missed.pk, "email")]
    assert Notice.objects.filter(processed_at=None).count() == 0


@time_machine.travel(NOON, tick=False)
@pytest.mark.parametrize("kind", sorted(set(AlertKind) - {AlertKind.LATE, AlertKind.MISSED_SCAN}))
def test_other_kinds_of_alert_tell_the_customer_nothing(shipment, brand, kind):
    brand.webhook_url = "https://hooks.acme.example/parcels"
    brand.save()
    _alert, notice = open_alert_notice(shipment, kind)
    notices.plan_notices(notice_ids=[notice.pk])
    assert list(Notification.objects.values_list("channel", flat=True)) == ["webhook"]


@time_machine.travel(NOON, tick=False)
def test_a_resolved_alert_sends_the_customer_nothing(shipment, brand, memory_sms, outbox):
    brand.webhook_url = "https://hooks.acme.example/parcels"
    brand.save()
    alert, opened = open_late(shipment)
    # Resolved before its opening was planned: the customer is not told of it.
    assert alerts.resolve_alert(alert=alert, now=timezone.now())
    resolved = Notice.objects.get(kind=NoticeKind.ALERT_RESOLVED)
    notices.plan_notices(notice_ids=[opened.pk, resolved.pk])
    assert sorted(Notification.objects.values_list("notice", "channel")) == [
        (opened.pk, "webhook"),
        (resolved.pk, "webhook"),
    ]


@time_machine.travel(datetime(2026, 11, 26, 22, 30, tzinfo=UTC), tick=False)
def test_an_sms_held_for_the_morning_is_dropped_if_the_alert_resolves_overnight(shipment, memory_sms):
    alert, notice = open_alert_notice(shipment, AlertKind.MISSED_SCAN)
    notices.plan_notices(notice_ids=[notice.pk])
    sms = customer_messages(notice=notice)[Channel.SMS]
    alerts.resolve_alert(alert=alert, now=timezone.now())
    with time_machine.travel(datetime(2026, 11, 27, 8, 0, 1, tzinfo=UTC), tick=False):
        assert sending.send_notification(notification_id=sms.pk).outcome == SendOutcome.SKIPPED
    sms.refresh_from_db()
    assert (sms.state, sms.last_error) == (State.SKIPPED, "The alert was resolved before the message went out.")
    assert memory_sms == []


@time_machine.travel(NOON, tick=False)
def test_a_stale_alert_notice_sends_no_sms_or_email(shipment):
    _alert, notice = open_late(shipment)
    Notice.objects.filter(pk=notice.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert notices.plan_notices(notice_ids=[notice.pk]) == []
    assert not Notification.objects.exists()


def test_a_second_late_alert_within_hours_does_not_message_again(shipment):
    with time_machine.travel(NOON, tick=False):
        first, notice = open_late(shipment)
        notices.plan_notices(notice_ids=[notice.pk])
        alerts.resolve_alert(alert=first, now=timezone.now())
    just_under = NOON + alert_messages.PROACTIVE_COOLDOWN - timedelta(minutes=1)
    with time_machine.travel(just_under, tick=False):
        second, again = open_late(shipment)
        notices.plan_notices(notice_ids=[again.pk])
        alerts.resolve_alert(alert=second, now=timezone.now())
    assert not Notification.objects.filter(notice=again).exists()
    with time_machine.travel(NOON + alert_messages.PROACTIVE_COOLDOWN + timedelta(minutes=1), tick=False):
        _third, later = open_late(shipment)
        notices.plan_notices(notice_ids=[later.pk])
    assert set(customer_messages(notice=later)) == {Channel.SMS, Channel.EMAIL}


@time_machine.travel(NOON, tick=False)
@pytest.mark.parametrize(
    "data",
    [
        lambda pk: {"alert_id": str(pk), "kind": "late"},  # not an id
        lambda pk: {"kind": "late"},
        lambda pk: {"alert_id": pk + 1, "kind": "late"},  # no such alert
        lambda pk: {"alert_id": True, "kind": "late"},  # a bool is no id, even where pk is 1
        lambda pk: {"alert_id": pk, "kind": ["late"]},
        lambda pk: ["late"],
    ],
)
def test_a_malformed_alert_notice_plans_nothing_and_is_stamped(shipment, data):
    alert, _notice = open_late(shipment)  # an open alert, which these notices must not borrow
    notice = Notice.objects.create(shipment=shipment, kind=NoticeKind.ALERT_OPENED, data=data(alert.pk))
    assert notices.plan_notices(notice_ids=[notice.pk]) == []
    assert Notice.objects.get(pk=notice.pk).processed_at is not None


@time_machine.travel(NOON, tick=False)
def test_a_notice_naming_another_parcel_s_alert_tells_nobody(make_shipment):
    mine, theirs = make_shipment(), make_shipment()
    alert, _notice = open_late(theirs)
    notice = Notice.objects.create(
        shipment=mine, kind=NoticeKind.ALERT_OPENED, data={"alert_id": alert.pk, "kind": "late"}
    )
    assert notices.plan_notices(notice_ids=[notice.pk]) == []
    assert not Notification.objects.filter(shipment=mine).exists()


@pytest.fixture
def endpoint(brand, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the endpoint is a listener on 127.0.0.1
    with FakeEndpoint([]) as served:
        brand.webhook_url, brand.webhook_secret = served.url, SECRET
        brand.save()
        yield served


@time_machine.travel(NOON, tick=False)
def test_one_webhook_and_one_message_per_channel_when_the_event_path_beat_and_the_sweep_all_see_it(
    make_shipment, endpoint, memory_sms, outbox, eager_celery, django_capture_on_commit_callbacks
):
    shipment = make_shipment(promised_window_end=NOON - timedelta(hours=1))
    shipment_services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 200))
    with django_capture_on_commit_callbacks(execute=True):
        # The event path's evaluation and beat's, one after the other.
        alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=timezone.now())
        alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=timezone.now())
    late = Alert.objects.get(shipment=shipment, kind=AlertKind.LATE, state=AlertState.OPEN)
    [notice] = [n for n in Notice.objects.filter(kind=NoticeKind.ALERT_OPENED) if n.data["alert_id"] == late.pk]

    # Planned again (a stamp lost), redelivered, and swept.
    Notice.objects.filter(pk=notice.pk).update(processed_at=None, created_at=timezone.now() - timedelta(minutes=5))
    tasks.plan_notices_task.apply(args=([notice.pk],))
    tasks.plan_notices_task.apply(args=([notice.pk],))
    tasks.sweep_task.apply()
    for pk in sweep.sweep().due_notification_ids:
        sending.send_notification(notification_id=pk)

    assert [m.to for m in memory_sms if "running late" in m.body] == [shipment.recipient_phone]
    assert [m.to for m in mail.outbox if m.subject == "Your parcel is running late"] == [[shipment.recipient_email]]
    hooks = [body for _path, _headers, body in endpoint.received if b'"kind":"late"' in body]
    assert len(hooks) == 1 and b"shipment.alert_opened" in hooks[0]
    assert set(Notification.objects.filter(notice=notice).values_list("channel", "state")) == {
        ("sms", State.SENT),
        ("email", State.SENT),
        ("webhook", State.SENT),
    }
