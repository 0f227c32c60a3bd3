"""The rule for outbound URLs (shipments/outbound.py), and every place a
brand's webhook URL is saved refusing what the portal must not send to:
the admin's brand form and ``create_brand``. A real listener on 127.0.0.1
stands for the service inside that an attacker points the URL at."""

import os
import socket
import subprocess
import sys
import threading
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from shipments import outbound
from shipments.models import Brand

PUBLIC = "93.184.216.34"
PROJECT = Path(__file__).resolve().parents[2]


class Listener:
    """An HTTP service on 127.0.0.1 that records every request it gets."""

    def __init__(self):
        self.received = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                listener.received.append(self.path)
                self.send_response(200)
                self.send_header("content-length", "6")
                self.end_headers()
                self.wfile.write(b"secret")

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    served = Listener()
    yield served
    served.close()


@pytest.fixture
def production(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    return settings


@pytest.fixture
def public_dns(monkeypatch):
    """The resolver at the edge of the world: names under .example answer
    with a public address (names in ``names`` with what they map to);
    everything else goes to the real resolver."""
    names = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names or host.endswith(".example"):
            address = names.get(host, PUBLIC)
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def attack_urls(port):
    """What was tried against the landed portal, and the other forms of an
    address inside."""
    return [
        f"http://127.0.0.1:{port}/hooks",
        f"http://localhost:{port}/hooks",
        f"http://[::1]:{port}/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hooks",
        f"http://0.0.0.0:{port}/hooks",
        f"http://[::ffff:127.0.0.1]:{port}/hooks",
        f"http://2130706433:{port}/hooks",  # 127.0.0.1 as one decimal number
        f"http://0x7f000001:{port}/hooks",
    ]


ATTACKS = range(len(attack_urls(0)))


# --- the rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fe80::1%eth0",
        "0.0.0.0",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
        "224.0.0.1",  # multicast: is_global alone lets it through
        "239.255.255.250",
        "ff02::1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "not an address",
    ],
)
def test_addresses_inside_or_reserved_are_not_public(address):
    assert outbound.is_public_address(address) is False


@pytest.mark.parametrize(
    "address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses_are(address):
    assert outbound.is_public_address(address) is True


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_form_of_an_inside_address_is_refused(production, attack):
    url = attack_urls(8080)[attack]
    with pytest.raises(outbound.RefusedDestination) as refused:
        outbound.check_url(url)
    assert "public" in refused.value.message


def test_a_name_is_refused_when_any_of_its_addresses_is_inside(production, public_dns, monkeypatch):
    real = socket.getaddrinfo

    def two_answers(host, port, *args, **kwargs):
        if host == "mixed.example":
            return real(PUBLIC, port, *args, **kwargs) + real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    with pytest.raises(outbound.RefusedDestination, match=r"mixed\.example does not resolve to public addresses only"):
        outbound.check_url("https://mixed.example/hooks")


def test_a_name_that_does_not_resolve_is_refused_in_the_same_words(production, public_dns):
    public_dns["db.internal"] = "10.1.2.3"
    messages = []
    for url in ("https://db.internal/hooks", "https://no-such-host.invalid/hooks"):
        with pytest.raises(outbound.RefusedDestination) as refused:
            outbound.check_url(url)
        messages.append(refused.value.message.split(" ", 1)[1])
    assert messages[0] == messages[1]


@pytest.mark.parametrize("url", ["ftp://hooks.acme.example/x", "https://", "hooks.acme.example/x", "https://h:99999/"])
def test_urls_that_are_not_http_with_a_host_are_refused(production, public_dns, url):
    with pytest.raises(outbound.RefusedDestination):
        outbound.check_url(url)


def test_public_names_pass(production, public_dns):
    outbound.check_url("https://hooks.acme.example/parcels")


def test_private_networks_are_allowed_for_development(settings, listener):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    for url in attack_urls(listener.port):
        outbound.check_url(url)
    outbound.check_address("127.0.0.1")


def test_private_networks_are_allowed_by_default_only_with_debug():
    def allowed(**environment):
        env = {**os.environ, "SECRET_KEY": "x" * 50, **environment}
        env.pop("WEBHOOK_ALLOW_PRIVATE_NETWORKS", None)
        code = "from tracking_portal import settings; print(settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS)"
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT, capture_output=True, text=True)
        return out.stdout.strip().splitlines()[-1]

    assert allowed(DJANGO_DEBUG="true") == "True"
    assert allowed(DJANGO_DEBUG="false") == "False"


# --- the admin's brand form -------------------------------------------------


class FormFields(HTMLParser):
    """The values a browser would submit from the page's form."""

    def __init__(self):
        super().__init__()
        self.data, self._select, self._textarea = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.data.setdefault(name, []).append(attrs.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select].append(attrs.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.data[self._textarea][0] = self.data[self._textarea][0].removeprefix("\n")
            self._textarea = None


@pytest.fixture
def superuser_client(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-not-used")
    client.force_login(root)
    return client


def post_brand_form(client, brand, webhook_url):
    url = reverse("admin:shipments_brand_change", args=[brand.pk])
    page = client.get(url)
    assert page.status_code == 200
    fields = FormFields()
    fields.feed(page.content.decode())
    data = {**fields.data, "webhook_url": [webhook_url]}
    return client.post(url, data)


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_admin_refuses_a_webhook_url_inside(production, superuser_client, brand, listener, attack):
    url = attack_urls(listener.port)[attack]
    response = post_brand_form(superuser_client, brand, url)
    assert response.status_code == 200  # the form again, not a redirect to the list
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["webhook_url"]
    brand.refresh_from_db()
    assert brand.webhook_url == ""
    assert listener.received == []


def test_the_admin_names_the_reason(production, superuser_client, brand, listener):
    response = post_brand_form(superuser_client, brand, f"http://127.0.0.1:{listener.port}/hooks")
    assert "127.0.0.1 is not a public internet address" in response.content.decode()


def test_the_admin_saves_a_public_webhook_url(production, public_dns, superuser_client, brand):
    post_brand_form(superuser_client, brand, "https://hooks.acme.example/parcels")
    brand.refresh_from_db()
    assert brand.webhook_url == "https://hooks.acme.example/parcels"


# --- create_brand -------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_create_brand_refuses_a_webhook_url_inside_and_saves_nothing(production, db, listener, attack):
    url = attack_urls(listener.port)[attack]
    with pytest.raises(CommandError):
        call_command("create_brand", "acme", "--name", "Acme", "--webhook-url", url)
    assert not Brand.objects.exists()
    assert listener.received == []


def test_create_brand_leaves_an_existing_brands_url_when_refusing(production, brand, listener):
    with pytest.raises(CommandError, match=r"--webhook-url refused: 127\.0\.0\.1 is not a public internet address"):
        call_command("create_brand", "acme", "--name", "Acme", "--webhook-url", f"http://127.0.0.1:{listener.port}/")
    brand.refresh_from_db()
    assert (brand.webhook_url, brand.webhook_secret) == ("", "")


def test_create_brand_exits_non_zero_with_a_clear_message(tmp_path, listener):
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "tracking.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }
    env.pop("WEBHOOK_ALLOW_PRIVATE_NETWORKS", None)
    url = f"http://localhost:{listener.port}/hooks"
    command = [sys.executable, "manage.py", "create_brand", "acme", "--name", "Acme", "--webhook-url", url]
    done = subprocess.run(command, env=env, cwd=PROJECT, capture_output=True, text=True)
    assert done.returncode != 0
    assert "--webhook-url refused: localhost does not resolve to public addresses only" in done.stderr
    assert "whsec_" not in done.stdout
    assert listener.received == []


def test_create_brand_takes_a_public_webhook_url(production, public_dns, db):
    call_command("create_brand", "acme", "--name", "Acme", "--webhook-url", "https://hooks.acme.example/parcels")
    assert Brand.objects.get().webhook_url == "https://hooks.acme.example/parcels"
