"""Re-subscribing an address that unsubscribed takes its owner's
confirmation (notifications/confirmations.py, through the tracking page's
form and the confirmation link)."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications import confirmations, preferences
from notifications.models import SmsOptOut, Subscription


@pytest.fixture
def url(shipment):
    return reverse("notifications:subscribe", args=[shipment.public_token])


@pytest.fixture
def unsubscribed(shipment):
    subscription = Subscription.objects.create(
        shipment=shipment, channel="email", address="ada@example.com", source=Subscription.Source.RECIPIENT
    )
    preferences.unsubscribe(subscription_id=subscription.pk)
    return subscription


def link_in(message) -> str:
    """The path of the confirmation link in the email."""
    [link] = re.findall(r"https?://\S+/subscribe/confirm/\S+/", message.body)
    return urlsplit(link).path


def test_the_tracking_page_form_does_not_resubscribe_an_unsubscribed_address(client, url, unsubscribed, outbox):
    """The attack: with nothing but the tracking link, switch an address
    that unsubscribed back on."""
    response = client.post(url, {"channel": "email", "address": "ada@example.com"})
    assert response.status_code == 200
    unsubscribed.refresh_from_db()
    assert not unsubscribed.active

    html = response.content.decode()
    assert "we sent a confirmation to a•••@example.com" in html
    assert "ada@example.com" not in html
    [message] = outbox
    assert message.to == ["ada@example.com"]
    assert "LM000001" in message.subject
    assert "/subscribe/confirm/" in message.body


def test_following_the_link_asks_first_and_confirming_switches_the_address_back_on(client, url, unsubscribed, outbox):
    client.post(url, {"channel": "email", "address": "ada@example.com"})
    path = link_in(outbox[0])
    browser = Client(enforce_csrf_checks=True)

    page = browser.get(path)
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    assert not Subscription.objects.get(pk=unsubscribed.pk).active  # a GET (a link scanner) changes nothing
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)

    done = browser.post(path, {"csrfmiddlewaretoken": token})
    assert done.status_code == 200
    assert "You will get updates again" in done.content.decode()
    subscription = Subscription.objects.get(pk=unsubscribed.pk)
    assert subscription.active and subscription.unsubscribed_at is None
    # Following it again is harmless.
    assert browser.post(path, {"csrfmiddlewaretoken": token}).status_code == 200
    assert Subscription.objects.filter(address="ada@example.com").count() == 1


def test_one_confirmation_per_address_per_ten_minutes_whatever_the_parcel(
    client, url, unsubscribed, outbox, make_shipment
):
    client.post(url, {"channel": "email", "address": "ada@example.com"})
    again = client.post(url, {"channel": "email", "address": "ada@example.com"}, headers={"HX-Request": "true"})
    assert "a few minutes ago" in again.content.decode()
    other = make_shipment()
    other_subscription = Subscription.objects.create(
        shipment=other, channel="email", address="ada@example.com", source=Subscription.Source.TRACKING_PAGE
    )
    preferences.unsubscribe(subscription_id=other_subscription.pk)
    client.post(
        reverse("notifications:subscribe", args=[other.public_token]),
        {"channel": "email", "address": "ada@example.com"},
    )
    assert len(outbox) == 1

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        client.post(url, {"channel": "email", "address": "ada@example.com"})
    assert len(outbox) == 2


def test_a_failed_send_is_said_and_not_retried_at_once(client, url, unsubscribed, outbox, monkeypatch):
    from notifications.transports import TransportError
    from notifications.transports.email import DjangoEmailTransport

    def unreachable(self, message):
        raise TransportError("Mail server unreachable")

    monkeypatch.setattr(DjangoEmailTransport, "send", unreachable)
    response = client.post(url, {"channel": "email", "address": "ada@example.com"})
    assert response.status_code == 200
    assert "We could not send a confirmation to a•••@example.com" in response.content.decode()
    monkeypatch.undo()
    client.post(url, {"channel": "email", "address": "ada@example.com"})
    assert outbox == []


def test_an_expired_or_forged_link_does_nothing(client, url, unsubscribed, outbox):
    client.post(url, {"channel": "email", "address": "ada@example.com"})
    path = link_in(outbox[0])
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        assert Client().post(path).status_code == 404
    assert Client().post(path[:-3] + "x/").status_code == 404
    confirm_token = path.rstrip("/").rsplit("/", 1)[-1]
    # A token of another kind (an unsubscribe link's salt) is not accepted.
    from notifications import content

    assert confirmations.subscription_from_token(content.unsubscribe_url(unsubscribed.pk).rsplit("/", 2)[-2]) is None
    assert confirmations.subscription_from_token(confirm_token) is not None
    assert not Subscription.objects.get(pk=unsubscribed.pk).active


def test_an_old_link_does_not_undo_a_later_unsubscribe(client, url, unsubscribed, outbox):
    client.post(url, {"channel": "email", "address": "ada@example.com"})
    path = link_in(outbox[0])
    confirmations.confirm(subscription_id=unsubscribed.pk)
    preferences.unsubscribe(subscription_id=unsubscribed.pk)
    assert Client().post(path).status_code == 404
    assert not Subscription.objects.get(pk=unsubscribed.pk).active


def test_an_opted_out_number_is_told_to_reply_start_and_is_sent_nothing(client, url, shipment, memory_sms):
    SmsOptOut.objects.create(phone="+447700900456")
    response = client.post(url, {"channel": "sms", "address": "07700 900456"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "+44•••456 asked us to stop texting it" in html
    assert "reply START" in html
    assert not Subscription.objects.exists()
    assert memory_sms == []

    # The number's owner replies START; then the form works as for anyone.
    preferences.handle_sms_reply(phone="+447700900456", text="START")
    response = client.post(url, {"channel": "sms", "address": "07700 900456"})
    assert "We will text +44•••456" in response.content.decode()
    assert Subscription.objects.get().active


def test_an_unsubscribed_number_comes_back_on_only_by_its_own_start(client, url, shipment):
    subscription = Subscription.objects.create(
        shipment=shipment, channel="sms", address="+447700900456", source=Subscription.Source.TRACKING_PAGE
    )
    preferences.unsubscribe(subscription_id=subscription.pk)
    response = client.post(url, {"channel": "sms", "address": "+447700900456"})
    assert "reply START" in response.content.decode()
    assert not Subscription.objects.get(pk=subscription.pk).active
    preferences.handle_sms_reply(phone="+447700900456", text="start")
    assert Subscription.objects.get(pk=subscription.pk).active
