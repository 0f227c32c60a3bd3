"""The map beside the pickup points offered after a failed attempt: the
points that have a place are lettered for it; without any, no map and no
map library; the list of choices is complete either way."""

import re

import pytest
from django.test import Client

from shipments import choices, services
from tests.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def failed(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 30))
    services.record_event(shipment_id=shipment.pk, event=event("failed_attempt", 60, substatus="recipient_unavailable"))
    return shipment


def forms_page(shipment, **headers) -> str:
    response = Client().get(shipment.get_absolute_url() + "actions/", HTTP_ACCEPT_LANGUAGE="en", **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_points_with_a_place_are_lettered_for_the_map_and_the_rest_stay_in_the_list(brand, failed, settings):
    choices.create_pickup_point(brand=brand, name="A Shop", line1="1 Road", city="London", lat=51.5362, lng=-0.1033)
    choices.create_pickup_point(brand=brand, name="B Locker", line1="2 Road", city="London")
    choices.create_pickup_point(brand=brand, name="C Kiosk", line1="3 Road", city="London", lat=51.53, lng=-0.12)
    html = forms_page(failed)
    options = re.findall(r'<div class="pickup-option"([^>]*)>', html)
    assert len(options) == 3
    assert 'data-letter="A" data-lat="51.53620" data-lng="-0.10330" data-name="A Shop"' in options[0]
    assert options[1] == ""  # no place, no marker; still a choice
    assert 'data-letter="B"' in options[2] and 'data-name="C Kiosk"' in options[2]
    assert len(re.findall(r'name="pickup_point" value="\d+"', html)) == 3
    # Hidden until the script draws it: without JavaScript the list is all there is.
    assert re.search(
        rf'<div class="pickup-map" data-tiles="{re.escape(settings.MAP_TILES_URL)}" role="region" '
        r'aria-label="Map of the pickup points" hidden></div>',
        html,
    )
    assert "leaflet/leaflet" in html and "js/pickup-map" in html


def test_without_a_placed_point_there_is_no_map(brand, failed):
    choices.create_pickup_point(brand=brand, name="B Locker", line1="2 Road", city="London")
    html = forms_page(failed)
    assert "B Locker" in html
    assert 'class="pickup-map"' not in html and "data-letter" not in html
    assert "leaflet/leaflet" not in html


def test_the_forms_fragment_brings_the_map_and_the_page_the_script(brand, failed):
    choices.create_pickup_point(brand=brand, name="A Shop", line1="1 Road", city="London", lat=51.5, lng=-0.1)
    fragment = forms_page(failed, HTTP_HX_REQUEST="true")
    assert 'class="pickup-map"' in fragment and "<html" not in fragment
    page = Client().get(failed.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "js/pickup-map" in page and "leaflet/leaflet.js" in page
