"""The recipient's time zone and language (shipments/recipients.py): one
rule for the pages and the messages."""

import zoneinfo

import pytest

from shipments.recipients import portal_language, recipient_language, recipient_zone


def test_portal_language_folds_regions_and_case():
    assert portal_language("en-GB") == "en"
    assert portal_language("DE") == "de"
    assert portal_language("es-419") == "es"
    assert portal_language("fr") == ""
    assert portal_language("") == ""


@pytest.mark.parametrize(
    ("recipient", "brand_default", "expected"),
    [("es", "de", "es"), ("en-GB", "de", "en"), ("fr", "de", "de"), ("", "es", "es")],
)
def test_recipient_language_then_the_brands(make_shipment, brand, recipient, brand_default, expected):
    brand.default_language = brand_default
    brand.save()
    assert recipient_language(make_shipment(recipient_language=recipient)) == expected


def test_recipient_zone_then_the_brands_then_utc(make_shipment, brand):
    brand.default_timezone = "Europe/Berlin"
    brand.save()
    assert recipient_zone(make_shipment(recipient_timezone="America/New_York")) == zoneinfo.ZoneInfo("America/New_York")
    assert recipient_zone(make_shipment(recipient_timezone="")) == zoneinfo.ZoneInfo("Europe/Berlin")
    # A name stored before it was checked is passed over, not taken as UTC.
    assert recipient_zone(make_shipment(recipient_timezone="Mars/Olympus")) == zoneinfo.ZoneInfo("Europe/Berlin")
    brand.default_timezone = ""
    brand.save()
    assert recipient_zone(make_shipment(recipient_timezone="")) == zoneinfo.ZoneInfo("UTC")
