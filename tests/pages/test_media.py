"""Stored images are served by the portal (pages/media.py): proof
through the live tracking link and, for staff, the admin; logos in public;
never MEDIA_ROOT as a directory, never anything but an image type."""

import importlib
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.urls import clear_url_caches, reverse

from shipments import services
from shipments.images import clean_image
from tests.conftest import event
from tests.shipments.test_images import HTML, png

SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Content-Disposition": "inline",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def delivered(shipment, media):
    """A delivered shipment with a clean photo and signature."""
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 30))
    services.attach_proof_of_delivery(
        shipment_id=shipment.pk,
        received_by="J. Smith",
        photo=clean_image(ContentFile(png(colour=(1, 2, 3)))),
        signature=clean_image(ContentFile(png(colour=(250, 250, 250)))),
    )
    shipment.refresh_from_db()
    return shipment


def proof(client, shipment, kind="photo", **extra):
    return client.get(reverse("pages:proof", args=[shipment.public_token, kind]), **extra)


def assert_served_safely(response, content_type, cache_control):
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    for header, value in SAFE_HEADERS.items():
        assert response[header] == value, header
    assert response["Cache-Control"] == cache_control


def test_the_proof_is_served_as_an_image_that_can_do_nothing(client, delivered):
    response = proof(client, delivered)
    assert_served_safely(response, "image/png", "private, max-age=600")
    assert response.content == delivered.proof_photo.read()
    assert proof(client, delivered, "signature").content == delivered.proof_signature.read()


def test_the_tracking_page_shows_the_proof_through_its_link(client, delivered):
    html = client.get(delivered.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").text
    assert reverse("pages:proof", args=[delivered.public_token, "photo"]) in html
    assert reverse("pages:proof", args=[delivered.public_token, "signature"]) in html
    assert "/media/" not in html


def test_another_token_or_kind_is_404(client, delivered, make_shipment):
    other = make_shipment()
    assert proof(client, other).status_code == 404  # no proof of its own
    assert client.get(f"/t/{'x' * 43}/proof/photo/").status_code == 404
    assert proof(client, delivered, "receipt").status_code == 404


def test_no_proof_is_served_once_the_link_has_expired(client, delivered, settings):
    later = delivered.delivered_at + timedelta(days=settings.TRACKING_LINK_DAYS_AFTER_DELIVERY, minutes=1)
    with time_machine.travel(later, tick=False):
        response = proof(client, delivered, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 410
    assert response["Content-Type"].startswith("text/html")
    assert delivered.proof_photo.read() not in response.content


def test_proof_is_shown_only_while_the_parcel_is_delivered(client, delivered, admin_user):
    services.correct_status(shipment_id=delivered.pk, status="in_transit", user=admin_user, reason="Wrong door")
    assert proof(client, delivered).status_code == 404


def test_a_stored_file_that_is_not_an_image_type_is_never_served(client, delivered, admin_client):
    # As a file stored before uploads were checked would be.
    delivered.proof_photo.save("x.html", ContentFile(HTML))
    delivered.proof_signature.save("x.svg", ContentFile(b"<svg onload=alert(1)>"))
    for kind in ("photo", "signature"):
        assert proof(client, delivered, kind).status_code == 404
        url = reverse("admin:shipments_shipment_proof", args=[delivered.pk, kind])
        assert admin_client.get(url).status_code == 404


def test_a_missing_stored_file_is_404_not_500(client, delivered):
    delivered.proof_photo.storage.delete(delivered.proof_photo.name)
    assert proof(client, delivered).status_code == 404


@pytest.fixture
def debug_urls(settings):
    """The URLconf as it is built with DEBUG on (where /media/ used to be
    served on the admin's origin)."""
    from tracking_portal import urls

    settings.DEBUG = True
    importlib.reload(urls)
    clear_url_caches()
    yield
    settings.DEBUG = False
    importlib.reload(urls)
    clear_url_caches()


def test_media_is_not_served_even_with_debug_on(client, delivered, debug_urls, media):
    (media / "x.html").write_bytes(HTML)
    for path in (delivered.proof_photo.name, "x.html"):
        assert (media / path).is_file()
        assert client.get("/media/" + path).status_code == 404
    assert client.get("/media/").status_code == 404


# --- the admin -------------------------------------------------------------------------


def staff_of(client, django_user_model, brand, name):
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_shipment", "change_shipment"]))
    brand.staff.add(user)
    client.force_login(user)
    return client


def test_staff_see_their_brands_proof_in_the_admin(client, django_user_model, brand, delivered):
    staff = staff_of(client, django_user_model, brand, "agent")
    response = staff.get(reverse("admin:shipments_shipment_proof", args=[delivered.pk, "signature"]))
    # The admin keeps nothing of its pages in any cache.
    assert_served_safely(response, "image/png", "private, max-age=0, no-cache, no-store, must-revalidate")
    assert response.content == delivered.proof_signature.read()


def test_staff_of_another_brand_get_404_from_the_admin_proof(client, django_user_model, other_brand, delivered):
    staff = staff_of(client, django_user_model, other_brand, "elsewhere")
    for kind in ("photo", "signature"):
        assert staff.get(reverse("admin:shipments_shipment_proof", args=[delivered.pk, kind])).status_code == 404


def test_the_admin_proof_needs_a_staff_login(client, delivered):
    response = client.get(reverse("admin:shipments_shipment_proof", args=[delivered.pk, "photo"]))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- logos -----------------------------------------------------------------------------


def test_an_uploaded_logo_is_served_in_public_and_shown_in_the_header(client, brand, delivered):
    brand.logo = clean_image(ContentFile(png(colour=(9, 9, 9))))
    brand.logo_url = "https://cdn.example/logo.png"
    brand.save()
    url = brand.logo_src
    assert url.startswith(f"/brands/{brand.slug}/logo/?v=")
    response = client.get(url)
    assert_served_safely(response, "image/png", "public, max-age=86400")
    assert response.content == brand.logo.read()
    html = client.get(delivered.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").text
    assert url in html.replace("&amp;", "&")
    assert "https://cdn.example/logo.png" not in html


def test_the_logo_url_is_used_without_an_upload(client, brand, delivered):
    brand.logo_url = "https://cdn.example/logo.png"
    brand.save()
    assert "https://cdn.example/logo.png" in client.get(delivered.get_absolute_url()).text
    assert client.get(f"/brands/{brand.slug}/logo/").status_code == 404
    assert client.get("/brands/nobody/logo/").status_code == 404
