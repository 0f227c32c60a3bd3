"""A parcel's pages stay out of search engines, and the language cookie is
set as the deployment says (Secure outside DEBUG)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from shipments import services

NOINDEX_META = '<meta name="robots" content="noindex">'


def assert_kept_out_of_search(response, *, page=True):
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    if page:
        assert NOINDEX_META in response.content.decode()


def test_the_tracking_page_its_fragments_and_its_actions_say_noindex(client, shipment):
    url = shipment.get_absolute_url()
    assert_kept_out_of_search(client.get(url))
    for target in ("status", "timeline", ""):
        fragment = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET=target)
        assert fragment.status_code == 200
        assert_kept_out_of_search(fragment, page=False)
    assert_kept_out_of_search(client.get(url + "actions/"))
    assert_kept_out_of_search(client.get(url + "actions/", HTTP_HX_REQUEST="true"), page=False)
    refused = client.post(url + "instructions/", {"instructions": "x" * 501})
    assert refused.status_code == 400
    assert_kept_out_of_search(refused)


def test_an_expired_link_says_noindex(client, shipment):
    delivered = timezone.now() - timedelta(days=settings.TRACKING_LINK_DAYS_AFTER_DELIVERY + 1)
    services.record_event(
        shipment_id=shipment.pk,
        event=services.NewEvent(status="delivered", occurred_at=delivered, external_id="dlv"),
    )
    expired = client.get(shipment.get_absolute_url())
    assert expired.status_code == 410
    assert_kept_out_of_search(expired)


def test_the_portals_home_page_may_be_indexed(client):
    home = client.get("/")
    assert NOINDEX_META not in home.content.decode()
    assert not home.has_header("X-Robots-Tag")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL, reason="the page cache needs Redis (set REDIS_URL)")
def test_a_page_from_the_page_cache_says_noindex_too(client, shipment, django_assert_num_queries):
    url = shipment.get_absolute_url()
    assert_kept_out_of_search(client.get(url, HTTP_ACCEPT_LANGUAGE="en"))
    with django_assert_num_queries(0):
        warm = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert_kept_out_of_search(warm)


def test_without_debug_the_language_cookie_is_secure(client, shipment, settings):
    # What settings.py makes of DJANGO_DEBUG=false (tests/tracking_portal/
    # test_settings_local_server.py checks that it does).
    settings.LANGUAGE_COOKIE_SECURE = True
    response = client.get(shipment.get_absolute_url() + "?lang=es")
    assert response["Content-Language"] == "es"
    morsel = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert morsel.value == "es"
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["max-age"] == settings.LANGUAGE_COOKIE_AGE
    assert "Secure" in response.cookies.output()


def test_the_lookup_sets_the_same_cookie(client, settings):
    settings.LANGUAGE_COOKIE_SECURE = True
    response = client.get("/track/?lang=de")
    morsel = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert morsel.value == "de" and morsel["secure"] is True and morsel["httponly"] is True


def test_in_development_the_cookie_works_over_plain_http(client, shipment, settings):
    settings.LANGUAGE_COOKIE_SECURE = False
    morsel = client.get(shipment.get_absolute_url() + "?lang=de").cookies[settings.LANGUAGE_COOKIE_NAME]
    assert morsel.value == "de" and not morsel["secure"]


def test_the_lookups_results_say_noindex(client, shipment):
    miss = client.post("/track/", {"tracking_number": shipment.tracking_number, "postcode_or_email": "ZZ1 1ZZ"})
    assert miss.status_code == 200
    assert_kept_out_of_search(miss, page=False)
    hit = client.post("/track/", {"tracking_number": shipment.tracking_number, "postcode_or_email": "SW1A 2AA"})
    assert hit.status_code == 303
    assert_kept_out_of_search(client.get(hit["Location"]))
