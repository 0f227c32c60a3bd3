"""The upload attack of issue 10, item 1, in Chromium: an HTML file that
loads a script, both stored as a shipment's proof before uploads were
checked, run nothing when opened through the proof URL or the old /media/
URL, with DEBUG on as it was when the attack worked."""

import importlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import clear_url_caches, reverse

from shipments import services
from shipments.models import Shipment
from tests.conftest import event

pytestmark = pytest.mark.browser

SCRIPT_PATH = "proof/signatures/2026/11/x.js"
SCRIPT = b"document.title = 'pwned'; window.pwned = true;"
# Loads the script from the same origin (script-src 'self' allowed it) and
# tries an inline one as well.
PAGE = (
    b"<!doctype html><html><head><title>proof</title>"
    b'<script src="/media/' + SCRIPT_PATH.encode() + b'"></script></head>'
    b"<body><script>document.title = 'pwned'; window.pwned = true;</script></body></html>"
)


@pytest.fixture
def debug_on(settings, tmp_path):
    """DEBUG on and the URLconf built under it, media in a fresh directory."""
    from tracking_portal import urls

    settings.MEDIA_ROOT = tmp_path
    settings.DEBUG = True
    importlib.reload(urls)
    clear_url_caches()
    yield
    settings.DEBUG = False
    importlib.reload(urls)
    clear_url_caches()


def stored_as_proof(shipment, photo_name, photo, signature_name, signature):
    """Put files straight into storage as the shipment's proof, as a file
    that got there before uploads were checked would be."""
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 30))
    photo_name = default_storage.save(photo_name, ContentFile(photo))
    signature_name = default_storage.save(signature_name, ContentFile(signature))
    Shipment.objects.filter(pk=shipment.pk).update(proof_photo=photo_name, proof_signature=signature_name)
    return photo_name, signature_name


def script_ran(page) -> bool:
    return page.title() == "pwned" or page.evaluate("window.pwned === true")


def test_stored_html_and_script_run_nowhere(debug_on, asgi_server, browser, make_shipment):
    attacked = make_shipment()
    html_name, script_name = stored_as_proof(attacked, "proof/photos/2026/11/x.html", PAGE, SCRIPT_PATH, SCRIPT)
    assert script_name == SCRIPT_PATH
    # The same page under an image's name: served as an image, in a sandbox.
    disguised = make_shipment()
    png_name, _ = stored_as_proof(disguised, "proof/photos/2026/11/y.png", PAGE, "proof/signatures/y.png", PAGE)

    context = browser.new_context()
    page = context.new_page()
    # The marker works: the same page as an ordinary HTML document of the
    # portal's origin (fulfilled by the browser, not the server) runs it.
    page.route(f"{asgi_server}/control/", lambda route: route.fulfill(body=PAGE, content_type="text/html"))
    page.goto(f"{asgi_server}/control/", wait_until="load")
    assert script_ran(page)

    urls = [
        reverse("pages:proof", args=[attacked.public_token, "photo"]),
        reverse("pages:proof", args=[attacked.public_token, "signature"]),
        reverse("pages:proof", args=[disguised.public_token, "photo"]),
        reverse("pages:proof", args=[disguised.public_token, "signature"]),
        "/media/" + html_name,
        "/media/" + script_name,
        "/media/" + png_name,
        attacked.get_absolute_url(),
    ]
    answers = {}
    for path in urls:
        fresh = context.new_page()
        response = fresh.goto(asgi_server + path, wait_until="load")
        answers[path] = (response.status, response.headers.get("content-type", ""))
        assert not script_ran(fresh), path
        fresh.close()
    context.close()

    # The HTML and the script are never served; the disguised page only as
    # an image, which a browser does not run.
    for path in urls[:2] + urls[4:7]:
        assert answers[path][0] == 404, path
    for path in urls[2:4]:
        assert answers[path] == (200, "image/png"), path
    assert answers[urls[7]][0] == 200
