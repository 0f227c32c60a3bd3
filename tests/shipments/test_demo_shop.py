"""The demo shop `make run` serves beside the portal: the widget in its
modes on another origin, with an order link signed as a brand's server
would sign it."""

import io
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import HTTPServer

import pytest
from django.core.management import call_command

from shipments.embedding import embed_origins, verify_order_link
from shipments.management.commands.demo_shop import handler_for, shop_page
from shipments.models import Brand, Shipment
from tests.conftest import free_port_in

pytestmark = pytest.mark.django_db
PORTAL = "http://127.0.0.1:8000"


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", "8000")
    call_command("load_demo", stdout=io.StringIO())
    return Brand.objects.get(slug="demo")


def test_the_demo_brand_lets_the_shop_frame_its_widget_and_sign_orders(demo):
    assert embed_origins(demo) == ["http://127.0.0.1:8001"]
    assert demo.embed_secret
    secret = demo.embed_secret
    # Again: nothing added twice, the secret kept.
    call_command("load_demo", stdout=io.StringIO())
    demo.refresh_from_db()
    assert embed_origins(demo) == ["http://127.0.0.1:8001"]
    assert demo.embed_secret == secret


def test_the_shop_origin_follows_the_portals_port(demo, monkeypatch):
    monkeypatch.setenv("PORT", "8200")
    call_command("load_demo", stdout=io.StringIO())
    demo.refresh_from_db()
    assert embed_origins(demo) == ["http://127.0.0.1:8001", "http://127.0.0.1:8201"]


def test_the_shop_page_holds_three_widgets_and_a_valid_signed_order(demo):
    html = shop_page(PORTAL)
    assert html.count("<div data-tracking-widget") == 3
    assert f'<script src="{PORTAL}/widget.js" async></script>' in html
    on_the_van = Shipment.objects.filter(brand=demo, status="out_for_delivery").order_by("tracking_number").first()
    assert f'data-token="{on_the_van.public_token}"' in html
    # Each widget keeps a working link for a browser without JavaScript.
    assert f'href="{PORTAL}{on_the_van.get_absolute_url()}"' in html
    assert html.count(f'href="{PORTAL}/track/demo/"') == 2
    order = re.search(r'data-order="([^"]+)"\s+data-expires="(\d+)" data-signature="([0-9a-f]{64})"', html)
    assert order, html
    ref, expires, signature = order.groups()
    assert Shipment.objects.filter(brand=demo, order_ref=ref).exists()
    assert verify_order_link(demo, ref, expires, signature)
    assert int(expires) > time.time()
    assert not verify_order_link(demo, ref, expires, "0" * 64)


# The server answers from its own thread, which must see the demo data.
@pytest.mark.django_db(transaction=True)
def test_the_shop_is_served_with_a_policy_that_allows_only_the_portal(demo):
    port = free_port_in(range(8450, 8470))
    server = HTTPServer(("127.0.0.1", port), handler_for(PORTAL))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.status == 200
            policy = response.headers["Content-Security-Policy"]
            assert f"script-src {PORTAL};" in policy
            assert f"frame-src {PORTAL};" in policy
            assert "data-tracking-widget" in response.read().decode()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/", timeout=5)
        assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_make_run_prints_the_shops_address(shipment, monkeypatch):
    monkeypatch.setenv("PORT", "8101")
    out = io.StringIO()
    call_command("portal_urls", stdout=out)
    assert "The widget on a demo shop:" in out.getvalue()
    assert "http://127.0.0.1:8102/" in out.getvalue()
