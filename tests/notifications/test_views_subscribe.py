import pytest
from django.urls import reverse

from notifications.models import Subscription


@pytest.fixture
def url(shipment):
    return reverse("notifications:subscribe", args=[shipment.public_token])


def test_the_form_renders_without_leaking_the_recipients_contact(client, shipment, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="csrfmiddlewaretoken"' in html
    assert f'action="{url}"' in html
    assert shipment.recipient_phone not in html
    assert shipment.recipient_email not in html


def test_opting_in_by_sms_without_javascript_stores_the_number_in_e164(client, shipment, url):
    response = client.post(url, {"channel": "sms", "address": "07700 900456"})
    assert response.status_code == 200
    subscription = Subscription.objects.get(shipment=shipment)
    assert (subscription.channel, subscription.address, subscription.active) == ("sms", "+447700900456", True)
    html = response.content.decode()
    assert "+447700900456" not in html  # shown masked
    assert "+44•••456" in html
    assert shipment.get_absolute_url() in html


def test_htmx_gets_only_the_partial(client, shipment, url):
    response = client.post(url, {"channel": "email", "address": "Grace@Example.com"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<section")
    assert "<html" not in html
    assert Subscription.objects.get(shipment=shipment).address == "grace@example.com"


@pytest.mark.parametrize(
    ("channel", "address"),
    [("sms", "not a number"), ("sms", "+44 12"), ("email", "nobody@"), ("fax", "+447700900456"), ("sms", "")],
)
def test_bad_input_is_a_form_error_not_a_500(client, shipment, url, channel, address):
    response = client.post(url, {"channel": channel, "address": address})
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode() or "required" in response.content.decode()
    assert not Subscription.objects.exists()


def test_csrf_is_enforced(shipment, url):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(url, {"channel": "sms", "address": "+447700900456"})
    assert response.status_code == 403
    assert not Subscription.objects.exists()


def test_unknown_token_is_404(client, db):
    response = client.post(reverse("notifications:subscribe", args=["nope"]), {"channel": "sms", "address": "x"})
    assert response.status_code == 404


def test_a_public_link_cannot_subscribe_a_list_of_numbers(client, shipment, url):
    for n in range(3):
        assert client.post(url, {"channel": "sms", "address": f"+44770090010{n}"}).status_code == 200
    response = client.post(url, {"channel": "sms", "address": "+447700900109"})
    assert response.status_code == 400
    assert Subscription.objects.filter(shipment=shipment).count() == 3


def test_subscribing_an_active_address_again_does_not_duplicate(client, shipment, url):
    client.post(url, {"channel": "sms", "address": "+447700900456"})
    response = client.post(url, {"channel": "sms", "address": "+447700900456"})
    assert "We will text +44•••456" in response.content.decode()
    assert list(Subscription.objects.values_list("active", flat=True)) == [True]


def test_delivered_parcels_take_no_new_subscribers(client, shipment, url):
    from shipments import services

    from ..conftest import event

    services.record_event(shipment_id=shipment.pk, event=event("delivered", 5))
    response = client.post(url, {"channel": "sms", "address": "+447700900456"})
    assert response.status_code == 400
    assert not Subscription.objects.exists()


def test_the_form_is_gone_with_the_tracking_link(client, shipment, url, settings):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from shipments import services

    from ..conftest import event

    services.record_event(shipment_id=shipment.pk, event=event("delivered", 5))
    later = timezone.now() + timedelta(days=settings.TRACKING_LINK_DAYS_AFTER_DELIVERY, hours=1)
    with time_machine.travel(later):
        assert client.get(url).status_code == 404
        assert client.post(url, {"channel": "sms", "address": "+447700900456"}).status_code == 404
    assert not Subscription.objects.exists()


def test_htmx_gets_its_errors_with_a_status_it_swaps(client, shipment, url):
    response = client.post(url, {"channel": "sms", "address": "nope"}, headers={"HX-Request": "true"})
    assert response.status_code == 200  # htmx does not swap 4xx answers
    html = response.content.decode()
    assert 'aria-invalid="true"' in html
    assert "Enter a mobile number" in html
    assert not Subscription.objects.exists()
