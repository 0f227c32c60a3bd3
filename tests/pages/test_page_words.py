"""What the tracking page says in the visitor's words: scan descriptions
from the status where the carrier wrote English, time zones as people name
them, phone numbers grouped for reading."""

import datetime as dt
import re
import zoneinfo

import pytest
from django.utils import translation

from shipments import services
from shipments.phones import readable_phone
from shipments.zone_names import zone_name
from tests.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


def page_html(client, shipment, language):
    response = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("language", "ours"),
    [("es", "No había nadie para recibir el paquete."), ("de", "Es war niemand da, um das Paket anzunehmen.")],
)
def test_a_carriers_english_scan_is_described_in_the_visitors_language(client, shipment, language, ours):
    services.record_event(
        shipment_id=shipment.pk,
        event=event("failed_attempt", 5, substatus="recipient_unavailable", description="Card left <b>no answer</b>"),
    )
    html = page_html(client, shipment, language)
    assert f'<p class="event-text">{ours}</p>' in html
    # The carrier's own words stay readable beside ours, marked as English and escaped.
    assert '<p class="event-original" lang="en">Card left &lt;b&gt;no answer&lt;/b&gt;</p>' in html


def test_without_a_substatus_the_status_describes_the_scan(client, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 5, description="Arrived at hub"))
    html = page_html(client, shipment, "de")
    assert '<p class="event-text">Das Paket wurde unterwegs gescannt.</p>' in html
    assert 'lang="en">Arrived at hub</p>' in html


def test_in_english_the_carriers_words_are_shown_alone(client, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 5, description="Arrived at hub"))
    html = page_html(client, shipment, "en")
    assert '<p class="event-text">Arrived at hub</p>' in html
    assert "event-original" not in html


def test_a_scan_without_words_gets_none_of_ours(client, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 5))
    assert "event-text" not in page_html(client, shipment, "es")


@pytest.mark.parametrize(
    ("key", "language", "name"),
    [
        ("Europe/London", "en", "UK time"),
        ("Europe/Berlin", "en", "Central European time"),
        ("America/New_York", "en", "Eastern time"),
        ("Europe/Madrid", "es", "hora de Europa central"),
        ("Europe/Berlin", "de", "mitteleuropäische Zeit"),
        ("Europe/Lisbon", "en", "Lisbon time"),
        ("America/Argentina/Buenos_Aires", "en", "Buenos Aires time"),
        ("Asia/Tokyo", "de", "Ortszeit Tokyo"),
        ("Australia/Sydney", "es", "hora de Sydney"),
        # The old names say the same as the new ones, not "GB time".
        ("GB", "en", "UK time"),
        ("CET", "de", "mitteleuropäische Zeit"),
        ("Zulu", "en", "UTC"),
        # POSIX's backwards sign: Etc/GMT+5 is five hours behind UTC.
        ("Etc/GMT+5", "en", "UTC\N{MINUS SIGN}05:00"),
        ("Etc/GMT-14", "de", "UTC+14:00"),
        ("EST", "en", "UTC\N{MINUS SIGN}05:00"),
        ("Pacific/Honolulu", "es", "hora de Hawái"),
    ],
)
def test_time_zones_are_named_as_people_say_them(key, language, name):
    with translation.override(language):
        assert str(zone_name(zoneinfo.ZoneInfo(key))) == name


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "Times shown in UK time"),
        ("es", "Horario: hora del Reino Unido"),
        ("de", "Zeitangaben: britische Zeit"),
    ],
)
def test_the_page_names_the_recipients_zone_in_the_visitors_language(client, make_shipment, language, text):
    from datetime import UTC, datetime

    shipment = make_shipment(
        recipient_timezone="Europe/London",
        promised_window_start=datetime(2026, 11, 26, 14, 0, tzinfo=UTC),
        promised_window_end=datetime(2026, 11, 26, 18, 0, tzinfo=UTC),
    )
    html = page_html(client, shipment, language)
    assert text in html and "Europe/London" not in html


@pytest.mark.parametrize(
    ("language", "text"),
    [("en", "Times shown in UK time"), ("es", "Horario: hora del Reino Unido"), ("de", "Zeitangaben: britische Zeit")],
)
def test_the_computed_window_names_the_zone_as_people_say_it(client, brand, make_shipment, language, text):
    from django.utils import timezone

    from shipments import drivers, eta

    now = timezone.now()
    shipment = make_shipment(recipient_timezone="Europe/London")
    services.record_event(
        shipment_id=shipment.pk,
        event=services.NewEvent(
            status="out_for_delivery", occurred_at=now - dt.timedelta(minutes=30), source="api", external_id="o"
        ),
    )
    route = drivers.set_route(brand=brand, driver_ref="van-1", date=now.date(), tracking_numbers=["LM000001"])
    drivers.record_locations(brand=brand, driver_ref="van-1", pings=[drivers.Ping(51.51, -0.10, now)])
    eta.recompute_route(route_id=route.pk, now=now)
    html = page_html(client, shipment, language)
    assert "when-computed" in html
    # The map's caption keeps the key for the browser's clock, out of sight.
    shown = re.sub(r' data-zone="Europe/London"', "", html)
    assert text in shown and "Europe/London" not in shown


@pytest.mark.parametrize(
    ("stored", "shown"),
    [("+442079460000", "+44 20 7946 0000"), ("+4930901820", "+49 30 901820"), ("", ""), ("12", "12")],
)
def test_phone_numbers_are_grouped_for_reading(stored, shown):
    assert readable_phone(stored) == shown


def test_the_brands_support_number_is_shown_grouped(client, brand, shipment):
    brand.support_phone = "+442079460000"
    brand.save()
    html = page_html(client, shipment, "en")
    assert '<span class="phone">+44 20 7946 0000</span>' in html
    assert "+442079460000" not in html


@pytest.mark.parametrize(("language", "button"), [("de", "Benachrichtigen Sie mich"), ("es", "Avísame")])
def test_the_subscribe_button_speaks_to_the_customer_in_the_pages_register(client, shipment, language, button):
    # German formal ("Sie"), Spanish informal ("tú"), as everywhere else on the page.
    html = client.get(shipment.get_absolute_url() + "actions/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert f">{button}</button>" in html
