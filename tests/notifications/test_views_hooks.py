import pytest
from django.test import Client
from django.urls import reverse
from twilio.request_validator import RequestValidator

from notifications import content, planning, sending
from notifications.models import InboundSms, Notification, SmsOptOut, State, Subscription
from shipments import services as shipment_services

from ..conftest import event

AUTH_TOKEN = "twilio-auth-token"


@pytest.fixture
def twilio(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = "https://tracking.example.com"
    settings.ALLOWED_HOSTS = ["testserver", "tracking.example.com"]


def signed_post(path, params, token=AUTH_TOKEN):
    signature = RequestValidator(token).compute_signature("https://tracking.example.com" + path, params)
    # Twilio posts without cookies or CSRF token.
    return Client(enforce_csrf_checks=True).post(path, params, headers={"X-Twilio-Signature": signature})


def sent_email(shipment, outbox):
    change = shipment_services.record_event(shipment_id=shipment.pk, event=event("delivered", 1)).status_change
    planning.plan_notifications(status_change_id=change.pk)
    notification = Notification.objects.get(shipment=shipment, channel="email")
    sending.send_notification(notification_id=notification.pk)
    [message] = [m for m in outbox if m.to == [notification.recipient]]
    return notification, message


# --- the email itself -------------------------------------------------------


def test_every_email_has_text_and_html_with_the_brand_the_link_and_an_unsubscribe(shipment, brand, outbox):
    brand.primary_colour, brand.logo_url = "#ff5500", "https://cdn.acme.example/logo.png"
    brand.save()
    notification, message = sent_email(shipment, outbox)
    html = message.alternatives[0].content
    unsubscribe = content.unsubscribe_url(notification.subscription_id)
    assert message.subject == "Your parcel has been delivered"
    assert shipment.tracking_url in message.body and shipment.tracking_url in html
    assert unsubscribe in message.body and unsubscribe in html
    assert "#ff5500" in html and "https://cdn.acme.example/logo.png" in html
    assert message.extra_headers["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.from_email == "Acme Parcels <tracking@localhost>"
    assert message.reply_to == ["help@acme.example"]
    assert shipment.destination_line1 not in html


# --- unsubscribe -------------------------------------------------------------


def test_the_unsubscribe_link_works_without_login_and_asks_first(shipment, outbox):
    notification, _message = sent_email(shipment, outbox)
    path = content.unsubscribe_url(notification.subscription_id).removeprefix("http://127.0.0.1:8000")
    anonymous = Client(enforce_csrf_checks=True)

    page = anonymous.get(path)
    assert page.status_code == 200
    assert Subscription.objects.get(pk=notification.subscription_id).active  # a GET changes nothing

    done = anonymous.post(path)
    assert done.status_code == 200
    assert "You are unsubscribed" in done.content.decode()
    assert not Subscription.objects.get(pk=notification.subscription_id).active

    # The next status change emails nobody at that address about this parcel.
    change = shipment_services.correct_status(
        shipment_id=shipment.pk, status="exception", user=support_user(), reason="Test"
    ).status_change
    planning.plan_notifications(status_change_id=change.pk)
    assert not Notification.objects.filter(status_change=change, channel="email").exists()


def support_user():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get_or_create(username="support")[0]


def test_an_unsubscribe_link_only_works_for_its_recipient(make_shipment, outbox):
    ada_shipment = make_shipment()
    bob_shipment = make_shipment(recipient_email="bob@example.com")
    ada, _ = sent_email(ada_shipment, outbox)
    bob, _ = sent_email(bob_shipment, outbox)
    token = content.unsubscribe_url(ada.subscription_id).rsplit("/", 2)[-2]

    Client().post(reverse("notifications:unsubscribe", args=[token]))
    assert not Subscription.objects.get(pk=ada.subscription_id).active
    assert Subscription.objects.get(pk=bob.subscription_id).active

    # A token cannot be edited to point at someone else.
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert Client().post(reverse("notifications:unsubscribe", args=[forged])).status_code == 404
    from django.core import signing

    other_salt = signing.dumps(bob.subscription_id, salt="something-else", compress=True)
    assert Client().post(reverse("notifications:unsubscribe", args=[other_salt])).status_code == 404
    assert Subscription.objects.get(pk=bob.subscription_id).active


def test_one_click_unsubscribe_from_the_mail_client(shipment, outbox):
    notification, _ = sent_email(shipment, outbox)
    path = content.unsubscribe_url(notification.subscription_id).removeprefix("http://127.0.0.1:8000")
    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert not Subscription.objects.get(pk=notification.subscription_id).active


# --- Twilio inbound ------------------------------------------------------------


def test_stop_from_twilio_opts_the_number_out(twilio, db):
    path = reverse("notifications:twilio_inbound")
    response = signed_post(path, {"From": "+447700900123", "Body": "STOP", "MessageSid": "SM1"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert SmsOptOut.objects.filter(phone="+447700900123").exists()

    signed_post(path, {"From": "+447700900123", "Body": "start", "MessageSid": "SM2"})
    assert not SmsOptOut.objects.exists()


def test_advanced_opt_out_keywords_are_read_from_opt_out_type(twilio, db):
    signed_post(
        reverse("notifications:twilio_inbound"),
        {"From": "+447700900123", "Body": "arrêter", "OptOutType": "STOP", "MessageSid": "SM1"},
    )
    assert SmsOptOut.objects.filter(phone="+447700900123").exists()


def test_a_replayed_start_does_not_undo_a_later_stop(twilio, db):
    path = reverse("notifications:twilio_inbound")
    start = {"From": "+447700900123", "Body": "START", "MessageSid": "SM" + "a" * 32}
    stop = {"From": "+447700900123", "Body": "STOP", "MessageSid": "SM" + "b" * 32}
    assert signed_post(path, start).status_code == 200
    assert signed_post(path, stop).status_code == 200
    assert SmsOptOut.objects.filter(phone="+447700900123").exists()

    # The captured START, signature and all, posted again.
    replay = signed_post(path, start)
    assert replay.status_code == 200
    assert replay.content.decode() == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert SmsOptOut.objects.filter(phone="+447700900123").exists()
    # Twilio retrying the STOP's own delivery is also a no-op.
    assert signed_post(path, stop).status_code == 200
    assert SmsOptOut.objects.count() == 1


def test_a_signed_inbound_message_without_its_sid_is_refused(twilio, db):
    response = signed_post(reverse("notifications:twilio_inbound"), {"From": "+447700900123", "Body": "START"})
    assert response.status_code == 400
    assert not InboundSms.objects.exists()


@pytest.mark.parametrize("how", ["unsigned", "wrong token", "tampered"])
def test_inbound_without_a_valid_signature_is_refused(twilio, db, how):
    path = reverse("notifications:twilio_inbound")
    params = {"From": "+447700900123", "Body": "STOP"}
    if how == "unsigned":
        response = Client().post(path, params)
    elif how == "wrong token":
        response = signed_post(path, params, token="not-the-token")
    else:
        signature = RequestValidator(AUTH_TOKEN).compute_signature("https://tracking.example.com" + path, params)
        response = Client().post(path, {**params, "From": "+447700900999"}, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert not SmsOptOut.objects.exists()


def test_inbound_is_refused_when_no_auth_token_is_configured(settings, db):
    settings.TWILIO_AUTH_TOKEN = ""
    path = reverse("notifications:twilio_inbound")
    signature = RequestValidator("").compute_signature("http://testserver" + path, {"Body": "STOP"})
    response = Client().post(path, {"From": "+447700900123", "Body": "STOP"}, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_inbound_only_takes_posts(twilio, db):
    assert Client().get(reverse("notifications:twilio_inbound")).status_code == 405


# --- Twilio delivery receipts ------------------------------------------------------


def sent_sms(shipment):
    change = shipment_services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 1)).status_change
    planning.plan_notifications(status_change_id=change.pk)
    notification = Notification.objects.get(shipment=shipment, channel="sms")
    sending.send_notification(notification_id=notification.pk)
    notification.refresh_from_db()
    return notification


@pytest.mark.parametrize(("reported", "state"), [("delivered", State.DELIVERED), ("undelivered", State.FAILED)])
def test_receipts_update_the_notification(twilio, shipment, reported, state):
    notification = sent_sms(shipment)
    path = reverse("notifications:twilio_status")
    response = signed_post(
        path,
        {"MessageSid": notification.provider_message_id, "MessageStatus": reported, "ErrorCode": "30003"},
    )
    assert response.status_code == 204
    notification.refresh_from_db()
    assert notification.state == state


def test_receipts_need_a_valid_signature(twilio, shipment):
    notification = sent_sms(shipment)
    response = Client().post(
        reverse("notifications:twilio_status"),
        {"MessageSid": notification.provider_message_id, "MessageStatus": "undelivered"},
        headers={"X-Twilio-Signature": "bm9wZQ=="},
    )
    assert response.status_code == 403
    notification.refresh_from_db()
    assert notification.state == State.SENT


def test_a_receipt_without_its_fields_is_a_400(twilio, db):
    assert signed_post(reverse("notifications:twilio_status"), {"MessageSid": "SM1"}).status_code == 400
