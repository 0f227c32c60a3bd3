"""The routing server's settings: read from the environment with the
adapter's defaults, and refused at load when they could not work."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROUTER_VARIABLES = ("ETA_ROUTER_URL", "ETA_ROUTER_KIND", "ETA_ROUTER_TIMEOUT_S")


def load(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ROUTER_VARIABLES}
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{k: getattr(settings, k) for k in {list(ROUTER_VARIABLES)!r}}}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "tracking_portal.settings", **env},
        capture_output=True,
        text=True,
    )


def test_unset_means_no_router_with_the_adapters_defaults():
    result = load({})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ETA_ROUTER_URL": "", "ETA_ROUTER_KIND": "osrm", "ETA_ROUTER_TIMEOUT_S": 1.0}


def test_set_they_are_read():
    result = load(
        {
            "ETA_ROUTER_URL": "https://valhalla.internal:8002",
            "ETA_ROUTER_KIND": "Valhalla",
            "ETA_ROUTER_TIMEOUT_S": "0.4",
        }
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "ETA_ROUTER_URL": "https://valhalla.internal:8002",
        "ETA_ROUTER_KIND": "valhalla",
        "ETA_ROUTER_TIMEOUT_S": 0.4,
    }


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ETA_ROUTER_KIND": "graphhopper"}, "ETA_ROUTER_KIND"),
        ({"ETA_ROUTER_URL": "file:///etc/passwd"}, "ETA_ROUTER_URL"),
        ({"ETA_ROUTER_URL": "osrm.internal:5000"}, "ETA_ROUTER_URL"),
        ({"ETA_ROUTER_URL": "http://"}, "ETA_ROUTER_URL"),
        ({"ETA_ROUTER_TIMEOUT_S": "0"}, "ETA_ROUTER_TIMEOUT_S"),
    ],
)
def test_a_router_that_could_not_work_is_refused_at_load(env, named):
    result = load(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr
