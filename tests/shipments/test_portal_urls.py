"""The links `make run` prints point at the server it started."""

import io

from django.core.management import call_command


def test_the_printed_links_use_the_port_the_portal_was_started_on(monkeypatch, shipment):
    monkeypatch.setenv("PORT", "8101")
    out = io.StringIO()
    call_command("portal_urls", stdout=out)
    assert "http://127.0.0.1:8101/track/" in out.getvalue()
    assert ":8000" not in out.getvalue()


def test_a_server_on_every_interface_is_opened_on_loopback(shipment):
    out = io.StringIO()
    call_command("portal_urls", host="0.0.0.0", port="8102", stdout=out)
    assert "http://127.0.0.1:8102/admin/" in out.getvalue()
