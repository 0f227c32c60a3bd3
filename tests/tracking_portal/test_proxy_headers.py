"""Whose address the look-up's limit counts: uvicorn started with the flags
`make run` and the Procfile give it, in a thread of this process (so that it
uses the test database), asked over real HTTP on 127.0.0.1.

By default no proxy is trusted, so a client's X-Forwarded-For changes
nothing; with FORWARDED_ALLOW_IPS naming the proxy (the documented
deployment), the address it forwards is the client's.
"""

import contextlib
import os
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest
from uvicorn.main import main as uvicorn_cli

from pages.lookup import LOOKUP_LIMIT
from shipments import limiter

from ..conftest import free_port_in, uvicorn_in_thread

ROOT = Path(__file__).resolve().parents[2]
PORTS = range(8500, 8520)
ATTEMPTS = 15


@pytest.fixture(autouse=True)
def fresh_limits(monkeypatch):
    # uvicorn reads FORWARDED_ALLOW_IPS itself when no flag names the proxies.
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    limiter.reset()
    yield
    limiter.reset()


def _environment(port: int, forwarded_allow_ips: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORWARDED_ALLOW_IPS", "MAKEFLAGS", "MFLAGS")}
    env.update(PORT=str(port), HOST="127.0.0.1", WEB_CONCURRENCY="1")
    if forwarded_allow_ips is not None:
        env["FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    return env


def make_run_arguments(port: int, forwarded_allow_ips: str | None) -> list[str]:
    """uvicorn's arguments in `make run`'s recipe, as make expands them (-n:
    printed, not run)."""
    printed = subprocess.run(
        ["make", "-n", "-s", "run"],
        cwd=ROOT,
        env=_environment(port, forwarded_allow_ips),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.replace("\\\n", " ")
    [line] = [line for line in printed.splitlines() if " -m uvicorn " in line]
    return shlex.split(line.split(" -m uvicorn ", 1)[1])


def procfile_arguments(port: int, forwarded_allow_ips: str | None) -> list[str]:
    """uvicorn's arguments in the Procfile's web line, as a shell expands
    them (the line run with printf in uvicorn's place)."""
    [web] = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")]
    command = web.removeprefix("web:").strip()
    assert command.startswith("python -m uvicorn ")
    printed = subprocess.run(
        ["sh", "-c", "printf '%s\\n' " + command.removeprefix("python -m uvicorn ")],
        env=_environment(port, forwarded_allow_ips),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return printed.splitlines()


@contextlib.contextmanager
def uvicorn_started_with(arguments: list[str]):
    """The portal under uvicorn, configured from these command-line
    arguments as uvicorn's own command line parses them."""
    params = uvicorn_cli.make_context("uvicorn", list(arguments)).params
    assert params["app"] == "tracking_portal.asgi:application"
    from tracking_portal.asgi import application

    with uvicorn_in_thread(
        application,
        # The Procfile listens on every interface; here, loopback is enough.
        port=params["port"],
        proxy_headers=params["proxy_headers"],
        forwarded_allow_ips=params["forwarded_allow_ips"],
        timeout_graceful_shutdown=params["timeout_graceful_shutdown"],
        lifespan=params["lifespan"],
    ):
        yield f"http://127.0.0.1:{params['port']}"


def look_ups(base_url: str, forwarded_for: list[str]) -> list[int]:
    """One failed look-up per X-Forwarded-For value (each of another
    number, so only the per-address limit can refuse them)."""
    with httpx.Client(base_url=base_url, timeout=15) as browser:
        form = browser.get("/track/", headers={"Accept-Language": "en"})
        assert form.status_code == 200
        token = browser.cookies["csrftoken"]
        return [
            browser.post(
                "/track/",
                data={"csrfmiddlewaretoken": token, "tracking_number": f"NOSUCH{n}", "postcode_or_email": "SW1A 2AA"},
                headers={"X-Forwarded-For": address, "Accept-Language": "en"},
            ).status_code
            for n, address in enumerate(forwarded_for)
        ]


STARTS = {"make run": make_run_arguments, "Procfile": procfile_arguments}


@pytest.mark.parametrize("start", STARTS)
def test_spoofed_forwarded_for_does_not_escape_the_limit(transactional_db, start):
    arguments = STARTS[start](free_port_in(PORTS), None)
    assert "--no-proxy-headers" in arguments
    spoofed = [f"203.0.113.{n}" for n in range(1, ATTEMPTS + 1)]
    with uvicorn_started_with(arguments) as base_url:
        statuses = look_ups(base_url, spoofed)
    assert statuses == [200] * LOOKUP_LIMIT + [429] * (ATTEMPTS - LOOKUP_LIMIT)


@pytest.mark.parametrize("start", STARTS)
def test_the_trusted_proxys_forwarded_address_is_the_client(transactional_db, start):
    arguments = STARTS[start](free_port_in(PORTS), "127.0.0.1")
    assert "--proxy-headers" in arguments
    forwarded = [f"198.51.100.{n}" for n in range(1, ATTEMPTS + 1)]
    with uvicorn_started_with(arguments) as base_url:
        # Each customer behind the proxy has an allowance of their own...
        assert look_ups(base_url, forwarded) == [200] * ATTEMPTS
        # ...and one customer's is still limited: 1 above, LOOKUP_LIMIT more here.
        assert look_ups(base_url, [forwarded[0]] * LOOKUP_LIMIT) == [200] * (LOOKUP_LIMIT - 1) + [429]
