"""What a newcomer's `make run` gets without configuring anything: links to
the server they started, a quiet in-memory broker; and the language cookie
a production deployment sets. Each case runs in a fresh process."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tracking_portal.local_server import local_base_url

ROOT = Path(__file__).resolve().parents[2]
PORTAL_VARIABLES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_DEBUG", "ALLOWED_HOSTS", "PUBLIC_BASE_URL"}


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in PORTAL_VARIABLES | {"HOST", "PORT"}}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "tracking_portal.settings", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def setting(name: str, env: dict):
    out = run_python(f"from django.conf import settings; print(__import__('json').dumps(settings.{name}))", env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_make_run_on_another_port_links_to_that_port():
    assert setting("PUBLIC_BASE_URL", {"PORT": "8101"}) == "http://127.0.0.1:8101"


def test_host_and_port_both_count_and_public_base_url_wins():
    assert setting("PUBLIC_BASE_URL", {"HOST": "127.0.0.2", "PORT": "8101"}) == "http://127.0.0.2:8101"
    assert setting("PUBLIC_BASE_URL", {}) == "http://127.0.0.1:8000"
    given = {"PUBLIC_BASE_URL": "https://track.example.com/", "PORT": "8101"}
    assert setting("PUBLIC_BASE_URL", given) == "https://track.example.com"


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", "8101", "http://127.0.0.1:8101"),
        ("0.0.0.0", "8101", "http://127.0.0.1:8101"),
        ("::", 9000, "http://[::1]:9000"),
        ("[::1]", "8000", "http://[::1]:8000"),
        ("localhost", "8000", "http://localhost:8000"),
    ],
)
def test_the_address_a_server_listens_on_becomes_one_to_open(host, port, url):
    assert local_base_url(host, port) == url


def test_eager_celery_without_redis_publishes_without_a_broker_warning():
    code = (
        "from tracking_portal import celery_app\n"
        "@celery_app.task(name='probe')\n"
        "def probe(): return 42\n"
        "print(probe.apply_async().get())"
    )
    done = run_python("exec(" + repr(code) + ")", {})
    assert done.stdout.strip().endswith("42")
    assert "No hostname was supplied" not in done.stderr
    assert "kombu" not in done.stderr


def test_the_language_cookie_is_secure_in_production_only():
    production = {"DJANGO_DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "t.example"}
    assert setting("LANGUAGE_COOKIE_SECURE", production) is True
    assert setting("LANGUAGE_COOKIE_SECURE", {}) is False
    assert setting("LANGUAGE_COOKIE_HTTPONLY", production) is True
    assert setting("LANGUAGE_COOKIE_SAMESITE", production) == "Lax"
