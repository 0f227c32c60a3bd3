"""Settings come from the environment: each case runs in a fresh process."""

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tracking_portal.log_filters import MaskTrackingTokens, mask_tokens

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_KEYS = ["DEBUG", "DATABASES", "CACHES", "CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL", "MAILERS"]


def settings_in(env: dict) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in _PORTAL_VARIABLES}
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{k: getattr(settings, k) for k in {SETTINGS_KEYS!r}}}, default=str))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "tracking_portal.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


_PORTAL_VARIABLES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_DEBUG", "ALLOWED_HOSTS", "EMAIL_URL"}


def test_no_environment_at_all_runs_on_embedded_defaults():
    s = settings_in({})
    assert s["DEBUG"] is True
    assert s["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert s["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")
    assert s["CELERY_TASK_ALWAYS_EAGER"] is True
    assert s["MAILERS"]["default"]["BACKEND"].endswith("console.EmailBackend")


def test_database_url_uses_postgres_through_the_pool_not_persistent_connections():
    s = settings_in({"DATABASE_URL": "postgres://u:p@db.example:5432/portal"})
    db = s["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert db["CONN_MAX_AGE"] == 0
    assert db["OPTIONS"]["pool"]["max_size"] == 20


def test_redis_url_switches_cache_and_broker_and_turns_eager_off():
    s = settings_in({"REDIS_URL": "redis://cache.example:6379/2"})
    assert s["CACHES"]["default"]["BACKEND"].endswith("RedisCache")
    assert s["CELERY_BROKER_URL"] == "redis://cache.example:6379/2"
    assert s["CELERY_TASK_ALWAYS_EAGER"] is False


def test_email_url_becomes_an_smtp_mailer():
    s = settings_in({"EMAIL_URL": "smtp+tls://user:pw@mail.example.com:587"})
    mailer = s["MAILERS"]["default"]
    assert mailer["BACKEND"].endswith("smtp.EmailBackend")
    assert mailer["OPTIONS"]["host"] == "mail.example.com"
    assert mailer["OPTIONS"]["port"] == 587
    assert mailer["OPTIONS"]["use_tls"] is True


def test_production_mode_refuses_to_start_without_a_secret_key():
    clean = {k: v for k, v in os.environ.items() if k not in _PORTAL_VARIABLES}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, "DJANGO_DEBUG": "false", "ALLOWED_HOSTS": "tracking.example.com"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_mode_passes_check_deploy():
    clean = {k: v for k, v in os.environ.items() if k not in _PORTAL_VARIABLES}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_DEBUG": "false",
            "ALLOWED_HOSTS": "tracking.example.com",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "EMAIL_URL": "smtp+tls://mail.example.com:587",
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("prefix", ["/t/", "/embed/"])
def test_tracking_tokens_are_masked_in_logs(prefix):
    token = secrets.token_urlsafe(32)
    line = f'"GET {prefix}{token}/ HTTP/1.1" 200'
    masked = mask_tokens(line)
    assert token not in masked
    assert f"{prefix}{token[:6]}…/" in masked


def test_log_filter_masks_formatted_arguments():
    token = secrets.token_urlsafe(32)
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s "GET %s"', ("1.2.3.4", f"/t/{token}/"), None
    )
    assert MaskTrackingTokens().filter(record)
    assert token not in record.getMessage()
