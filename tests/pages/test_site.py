"""The site's own pages: the 404 a cut or mistyped tracking link gets, and
the favicon."""

import re

import pytest
from django.templatetags.static import static

from shipments import keys
from tests.shipments.api_helpers import Api, is_problem

pytestmark = pytest.mark.django_db


def not_found(client, path, **headers):
    response = client.get(path, **headers)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    return response, response.content.decode()


@pytest.mark.parametrize(
    ("headers", "language", "words"),
    [
        ({}, "en", "You can also find your parcel with its tracking number"),
        ({"HTTP_ACCEPT_LANGUAGE": "es-ES,es;q=0.9"}, "es", "También puedes encontrar tu paquete"),
        ({"HTTP_ACCEPT_LANGUAGE": "de"}, "de", "Sie können Ihr Paket auch mit der Sendungsnummer"),
        # The switcher's choice, kept in the cookie, wins over the browser.
        ({"HTTP_ACCEPT_LANGUAGE": "de", "HTTP_COOKIE": "django_language=es"}, "es", "También puedes encontrar"),
    ],
)
def test_a_mistyped_tracking_link_gets_a_page_in_the_visitors_language(client, headers, language, words):
    response, html = not_found(client, "/t/not-a-real-token/", **headers)
    assert words in html
    assert f'<html lang="{language}">' in html
    assert response["Content-Language"] == language
    # The way on: the look-up.
    assert 'href="/track/"' in html


def test_a_cut_tracking_link_gets_the_same_page(client, shipment):
    _response, html = not_found(client, f"/t/{shipment.public_token[:20]}/")
    assert "This link does not work" in html
    # Cut before its slash: the slash is added, then the same page.
    response = client.get(f"/t/{shipment.public_token[:20]}", follow=True)
    assert response.status_code == 404
    assert "This link does not work" in response.content.decode()


def test_the_404_is_kept_out_of_caches_and_search_engines(client):
    response, html = not_found(client, "/t/garbage/")
    assert response["Cache-Control"] == "no-store"
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex">' in html
    assert "Not Found</h1>" not in html  # Django's bare default


def test_an_api_path_still_gets_a_problem(client, brand):
    problem = is_problem(client.get("/api/v1/no-such-endpoint"), 404)
    assert "/api/v1/docs" in problem["detail"]
    api = Api(client, keys.create_api_key(brand=brand)[1])
    is_problem(api.get("/shipments/NOPE"), 404)
    is_problem(api.get("/routes/drv-x/2026-11-26"), 404)


def test_favicon_ico_leads_to_the_portals_own_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == static("img/favicon.svg")
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(icon.streaming_content)


def test_the_pages_link_the_icon(client, shipment):
    for path in ("/", "/track/", shipment.get_absolute_url(), "/t/garbage/"):
        html = client.get(path).content.decode()
        assert re.search(r'<link rel="icon" href="[^"]*favicon\.svg"', html), path
