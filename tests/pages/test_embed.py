"""The status widget's frames (pages/embed.py)."""

import re
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from shipments import services
from shipments.embedding import order_signature
from tests.conftest import event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_limits")]

SHOP = "https://shop.acme.example"
SECRET = "embsec_test-secret"


@pytest.fixture
def embedding_brand(brand):
    brand.embed_origins = f"{SHOP}\nhttp://127.0.0.2:8000"
    brand.embed_secret = SECRET
    brand.save()
    return brand


def frame_ancestors(response) -> str:
    policy = response["Content-Security-Policy"]
    return re.search(r"frame-ancestors ([^;]*)", policy).group(1).strip()


def tracking_frame(client, shipment, **extra):
    return client.get(reverse("pages:embed_tracking", args=[shipment.public_token]), **extra)


def signed(order_ref, *, secret=SECRET, expires=None):
    expires = int(time.time()) + 3600 if expires is None else expires
    return {"expires": str(expires), "signature": order_signature(secret, order_ref, expires)}


def order_frame(client, brand_slug, order_ref, params, **extra):
    return client.get(reverse("pages:embed_order", args=[brand_slug, order_ref]), params, **extra)


# One parcel


def test_the_parcel_frame_may_be_framed_by_the_brands_origins_only(client, embedding_brand, shipment):
    response = tracking_frame(client, shipment)
    assert response.status_code == 200
    assert frame_ancestors(response) == f"{SHOP} http://127.0.0.2:8000"
    assert "X-Frame-Options" not in response
    # The rest of the site's policy stays, nonce and all.
    policy = response["Content-Security-Policy"]
    assert "object-src 'none'" in policy and "script-src 'self' 'nonce-" in policy
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert f'nonce="{nonce}"' in response.content.decode()


def test_a_brand_without_embed_origins_lets_nobody_frame_it(client, shipment):
    response = tracking_frame(client, shipment)
    assert response.status_code == 200
    assert frame_ancestors(response) == "'none'"


def test_every_other_page_still_refuses_to_be_framed(client, embedding_brand, shipment):
    for url in (shipment.get_absolute_url(), reverse("pages:lookup"), reverse("pages:home")):
        response = client.get(url)
        assert frame_ancestors(response) == "'none'"
        assert response["X-Frame-Options"] == "DENY"


def test_the_parcel_frame_shows_the_tracking_pages_status_privately(client, embedding_brand, shipment):
    for minutes, status in enumerate(["info_received", "in_transit", "in_transit", "out_for_delivery"]):
        services.record_event(
            shipment_id=shipment.pk,
            event=event(status, minutes=minutes * 10, description=f"Scan number {minutes}", location_city="London"),
        )
    html = tracking_frame(client, shipment).content.decode()
    assert "Out for delivery" in html and shipment.tracking_number in html
    assert "for Ada in London" in html
    for private in ("Lovelace", "1 Example Street", "SW1A", "+447700900123", "ada@example.com"):
        assert private not in html
    # The last three scans, newest first; the full page has the rest.
    assert "Scan number 3" in html and "Scan number 1" in html and "Scan number 0" not in html
    assert f'href="{shipment.get_absolute_url()}" target="_blank" rel="noopener"' in html
    assert f'sse-connect="{shipment.get_absolute_url()}events/?since=' in html
    assert '<meta name="robots" content="noindex">' in html
    assert '<html lang="en">' in html


def test_the_frame_speaks_the_language_the_tracking_page_would(client, embedding_brand, shipment):
    german = tracking_frame(client, shipment, HTTP_ACCEPT_LANGUAGE="de")
    assert german["Content-Language"] == "de" and '<html lang="de">' in german.content.decode()
    chosen = client.get(reverse("pages:embed_tracking", args=[shipment.public_token]) + "?lang=es")
    html = chosen.content.decode()
    assert chosen["Content-Language"] == "es"
    # The frame's own links keep the choice: a cross-site frame has no cookie.
    assert f'hx-get="{reverse("pages:embed_tracking", args=[shipment.public_token])}?lang=es"' in html
    assert "Set-Cookie" not in chosen


def test_a_live_update_of_the_frame_sends_its_fragments_out_of_band(client, embedding_brand, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery"))
    response = tracking_frame(client, shipment, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="status"' in html and 'hx-swap-oob="innerHTML"' in html and 'id="timeline"' in html
    assert "<html" not in html
    assert frame_ancestors(response) == f"{SHOP} http://127.0.0.2:8000"


def test_after_delivery_the_frame_stops_listening(client, embedding_brand, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    html = tracking_frame(client, shipment).content.decode()
    assert "Delivered" in html
    assert "sse-connect" not in html and "htmx" not in html


def test_the_frame_shows_proof_of_delivery_through_the_tracking_links_proof_urls(
    client, embedding_brand, shipment, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    services.attach_proof_of_delivery(
        shipment_id=shipment.pk,
        received_by="J. Smith",
        photo=ContentFile(b"\x89PNG fake", name="door.png"),
        signature=ContentFile(b"\x89PNG fake", name="sig.png"),
    )
    html = tracking_frame(client, shipment).content.decode()
    assert "Proof of delivery" in html and "J. Smith" in html
    proof_url = shipment.get_absolute_url() + "proof/"
    assert f'src="{proof_url}photo/"' in html and f'src="{proof_url}signature/"' in html
    assert "/media/" not in html


def test_a_live_frame_loads_no_map(client, embedding_brand, shipment):
    html = tracking_frame(client, shipment).content.decode()
    assert "hx-sse-2.js" in html and "tracking.js" in html and "widget-frame.js" in html
    assert "leaflet" not in html


def test_a_warm_parcel_frame_needs_no_query(client, embedding_brand, shipment, django_assert_num_queries, settings):
    from pages import cache as page_cache

    first = tracking_frame(client, shipment)
    if page_cache.shared_redis() is None:
        pytest.skip("the page cache needs REDIS_URL")
    with django_assert_num_queries(0):
        warm = tracking_frame(client, shipment)
    assert warm.status_code == 200
    assert frame_ancestors(warm) == frame_ancestors(first)
    assert warm["Content-Security-Policy"] != first["Content-Security-Policy"]  # a nonce of its own


def test_a_carriers_text_stays_text_in_the_frame(client, embedding_brand, shipment):
    services.record_event(
        shipment_id=shipment.pk, event=event("in_transit", description="<script>alert(1)</script><img src=x>")
    )
    html = tracking_frame(client, shipment).content.decode()
    assert "<script>alert(1)" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def not_found_body(response) -> bytes:
    assert response.status_code == 404
    return response.content


def test_every_failure_is_the_same_404(client, embedding_brand, other_brand, make_shipment):
    order = make_shipment(order_ref="ORD-1")
    theirs = make_shipment(for_brand=other_brand, order_ref="ORD-1")
    bodies = {
        "unknown token": not_found_body(client.get(reverse("pages:embed_tracking", args=["x" * 43]))),
        "another brand's token": not_found_body(tracking_frame(client, theirs, data={"brand": "acme"})),
        "unknown brand's order": not_found_body(order_frame(client, "nope", "ORD-1", signed("ORD-1"))),
        "unknown brand's look-up": not_found_body(client.get(reverse("pages:embed_lookup", args=["nope"]))),
        "unknown order": not_found_body(order_frame(client, "acme", "ORD-404", signed("ORD-404"))),
        "forged signature": not_found_body(
            order_frame(client, "acme", "ORD-1", signed("ORD-1", secret="embsec_guessed"))
        ),
        "expired signature": not_found_body(
            order_frame(client, "acme", "ORD-1", signed("ORD-1", expires=int(time.time()) - 1))
        ),
        "no signature": not_found_body(order_frame(client, "acme", "ORD-1", {})),
        "another brand's order": not_found_body(
            order_frame(client, "other", "ORD-1", signed("ORD-1"))  # other has no secret
        ),
    }
    assert len(set(bodies.values())) == 1, bodies
    body = next(iter(bodies.values())).decode()
    assert order.tracking_number not in body and theirs.tracking_number not in body and "Acme" not in body
    assert tracking_frame(client, theirs, data={"brand": "other"}).status_code == 200


def test_an_expired_tracking_link_shows_nothing_in_the_frame(client, embedding_brand, shipment, settings):
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    type(shipment).objects.filter(pk=shipment.pk).update(
        delivered_at=timezone.now() - timedelta(days=settings.TRACKING_LINK_DAYS_AFTER_DELIVERY + 1)
    )
    response = tracking_frame(client, shipment)
    assert not_found_body(response) == not_found_body(client.get(reverse("pages:embed_tracking", args=["x" * 43])))
    assert shipment.tracking_number not in response.content.decode()
    # Framed where the parcel's widget is, so that the widget says so there.
    assert frame_ancestors(response) == f"{SHOP} http://127.0.0.2:8000"


# An order


def test_the_order_frame_lists_every_parcel_of_the_brands_order(client, embedding_brand, other_brand, make_shipment):
    first = make_shipment(tracking_number="LMA1", order_ref="ORD-7")
    second = make_shipment(tracking_number="LMA2", order_ref="ORD-7")
    make_shipment(tracking_number="LMB1", order_ref="ORD-8")
    make_shipment(for_brand=other_brand, tracking_number="LMX9", order_ref="ORD-7")
    services.record_event(shipment_id=second.pk, event=event("out_for_delivery"))
    response = order_frame(client, "acme", "ORD-7", signed("ORD-7"))
    html = response.content.decode()
    assert response.status_code == 200
    assert frame_ancestors(response) == f"{SHOP} http://127.0.0.2:8000" and "X-Frame-Options" not in response
    assert "LMA1" in html and "LMA2" in html and "LMB1" not in html and "LMX9" not in html
    assert "Out for delivery" in html and "Order received" in html
    for shipment in (first, second):
        assert f'sse-connect="{shipment.get_absolute_url()}events/"' in html
        assert f'href="{shipment.get_absolute_url()}" target="_blank" rel="noopener"' in html
    for private in ("Ada", "Example Street", "SW1A"):
        assert private not in html


def test_the_order_frames_live_update_is_its_list(client, embedding_brand, make_shipment):
    make_shipment(tracking_number="LMA1", order_ref="ORD-7")
    response = order_frame(client, "acme", "ORD-7", signed("ORD-7"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "LMA1" in html and "<html" not in html and 'class="embed-parcel"' in html


def test_the_previous_secret_verifies_for_a_day_after_a_rotation(client, embedding_brand, make_shipment):
    make_shipment(order_ref="ORD-7")
    embedding_brand.embed_previous_secret = SECRET
    embedding_brand.embed_secret = "embsec_new"
    embedding_brand.embed_secret_rotated_at = timezone.now() - timedelta(hours=2)
    embedding_brand.save()
    assert order_frame(client, "acme", "ORD-7", signed("ORD-7")).status_code == 200
    assert order_frame(client, "acme", "ORD-7", signed("ORD-7", secret="embsec_new")).status_code == 200
    embedding_brand.embed_secret_rotated_at = timezone.now() - timedelta(days=2)
    embedding_brand.save()
    assert order_frame(client, "acme", "ORD-7", signed("ORD-7")).status_code == 404


def test_a_signature_for_one_order_opens_no_other(client, embedding_brand, make_shipment):
    make_shipment(order_ref="ORD-7")
    make_shipment(order_ref="ORD-8")
    params = signed("ORD-7")
    assert order_frame(client, "acme", "ORD-8", params).status_code == 404
    assert (
        order_frame(client, "acme", "ORD-7", {**params, "expires": str(int(params["expires"]) + 1)}).status_code == 404
    )


# The look-up


def lookup_frame(client, data=None, brand_slug="acme", **extra):
    url = reverse("pages:embed_lookup", args=[brand_slug])
    if data is None:
        return client.get(url, **extra)
    return client.post(url, data, **{"HTTP_SEC_FETCH_SITE": "same-origin", **extra})


def test_the_lookup_frame_needs_no_cookie(embedding_brand, shipment):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    form = lookup_frame(client)
    assert form.status_code == 200
    assert frame_ancestors(form) == f"{SHOP} http://127.0.0.2:8000" and "X-Frame-Options" not in form
    assert not form.cookies  # no CSRF cookie to need
    html = form.content.decode()
    assert '<label for="id_tracking_number">' in html and "csrfmiddlewaretoken" not in html

    hit = lookup_frame(client, {"tracking_number": shipment.tracking_number, "postcode_or_email": "sw1a 2aa"})
    assert hit.status_code == 303
    assert hit["Location"] == reverse("pages:embed_tracking", args=[shipment.public_token])
    assert frame_ancestors(client.get(hit["Location"])) == f"{SHOP} http://127.0.0.2:8000"


def test_the_lookup_frame_searches_its_brand_only(client, embedding_brand, other_brand, make_shipment):
    theirs = make_shipment(for_brand=other_brand, tracking_number="LM777")
    miss = lookup_frame(client, {"tracking_number": theirs.tracking_number, "postcode_or_email": "SW1A 2AA"})
    assert miss.status_code == 200
    assert "We could not find a parcel" in miss.content.decode()
    assert theirs.public_token not in miss.content.decode()


def test_a_lookup_posted_from_another_site_is_refused(client, embedding_brand, shipment):
    forged = lookup_frame(
        client,
        {"tracking_number": shipment.tracking_number, "postcode_or_email": "SW1A 2AA"},
        HTTP_SEC_FETCH_SITE="cross-site",
    )
    assert forged.status_code == 403
    assert shipment.public_token not in forged.content.decode()


def test_the_lookup_frame_keeps_the_lookups_limits(client, embedding_brand, shipment):
    from pages.lookup import FAILED_LOOKUPS_PER_NUMBER

    for _ in range(FAILED_LOOKUPS_PER_NUMBER):
        lookup_frame(
            client,
            {"tracking_number": shipment.tracking_number, "postcode_or_email": "WRONG"},
            REMOTE_ADDR="198.51.100.1",
        )
    limited = lookup_frame(
        client,
        {"tracking_number": shipment.tracking_number, "postcode_or_email": "SW1A 2AA"},
        REMOTE_ADDR="198.51.100.2",
    )
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert "Too many attempts for this tracking number" in limited.content.decode()


def test_an_order_reference_in_the_lookup_frame_lists_the_brands_parcels_of_it(
    client, embedding_brand, other_brand, make_shipment
):
    first = make_shipment(tracking_number="LMA1", order_ref="ORD-9")
    second = make_shipment(tracking_number="LMA2", order_ref="ORD-9")
    elsewhere = make_shipment(tracking_number="LMA3", order_ref="ORD-9", destination_postcode="E1 6AN")
    theirs = make_shipment(for_brand=other_brand, tracking_number="LMX1", order_ref="ORD-9")
    found = lookup_frame(client, {"tracking_number": "ORD-9", "postcode_or_email": "SW1A 2AA"})
    html = found.content.decode()
    assert found.status_code == 200
    assert frame_ancestors(found) == f"{SHOP} http://127.0.0.2:8000"
    for shipment in (first, second):
        assert f'href="{reverse("pages:embed_tracking", args=[shipment.public_token])}"' in html
    assert elsewhere.tracking_number not in html and theirs.tracking_number not in html
    assert theirs.public_token not in html and elsewhere.public_token not in html


def test_markup_in_an_order_reference_stays_text(client, embedding_brand, make_shipment):
    order_ref = '<img src=x onerror="alert(1)">'
    make_shipment(order_ref=order_ref)
    response = order_frame(client, "acme", order_ref, signed(order_ref))
    html = response.content.decode()
    assert response.status_code == 200
    assert order_ref not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_a_warm_frame_still_refuses_another_brands_name(client, embedding_brand, shipment):
    assert tracking_frame(client, shipment, data={"brand": "acme"}).status_code == 200
    assert tracking_frame(client, shipment).status_code == 200  # warm, with REDIS_URL
    refused = tracking_frame(client, shipment, data={"brand": "other"})
    assert refused.status_code == 404 and shipment.tracking_number not in refused.content.decode()
    assert frame_ancestors(refused) == "'none'"  # no such brand


def test_a_failure_under_a_brands_name_is_framed_by_that_brand(client, embedding_brand, other_brand, make_shipment):
    other_brand.embed_origins = "https://shop.other.example"
    other_brand.save()
    theirs = make_shipment(for_brand=other_brand)
    # The widget on acme's shop says that it has nothing to show, there.
    for response in (
        tracking_frame(client, theirs, data={"brand": "acme"}),
        client.get(reverse("pages:embed_tracking", args=["x" * 43]), {"brand": "acme"}),
    ):
        assert response.status_code == 404 and theirs.tracking_number not in response.content.decode()
        assert frame_ancestors(response) == f"{SHOP} http://127.0.0.2:8000"
    assert frame_ancestors(client.get(reverse("pages:embed_tracking", args=["x" * 43]))) == "'none'"


def test_each_frame_reads_in_a_few_queries(client, embedding_brand, make_shipment, django_assert_max_num_queries):
    shipments = [make_shipment(order_ref="ORD-Q") for _ in range(5)]
    for shipment in shipments:
        services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    with django_assert_max_num_queries(1 if connection.vendor == "postgresql" else 4):
        assert tracking_frame(client, shipments[0]).status_code == 200
    with django_assert_max_num_queries(3):  # the brand, its parcels, their open alerts
        assert order_frame(client, "acme", "ORD-Q", signed("ORD-Q")).status_code == 200
    with django_assert_max_num_queries(1):
        assert lookup_frame(client).status_code == 200
