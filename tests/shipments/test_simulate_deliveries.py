"""The demo day stops cleanly and takes its API key with it, however it is
stopped: the end of its rounds, an error, Ctrl+C or SIGTERM."""

import io
import os
import selectors
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shipments.management.commands.simulate_deliveries import KEY_NAME, READY_PATH, simulator_key
from shipments.models import ApiKey, Brand
from tests.conftest import free_port_in

ROOT = Path(__file__).resolve().parents[2]
# Ports for the simulator to wait on, nothing listening.
PORTS = range(8460, 8480)
PORTAL_VARIABLES = {"DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL", "HOST", "PORT", "DJANGO_DEBUG", "SECRET_KEY"}


def live_keys():
    return ApiKey.objects.filter(name=KEY_NAME, revoked_at=None)


@pytest.fixture
def demo_brand(db):
    call_command("load_demo", stdout=io.StringIO())
    return Brand.objects.get(slug="demo")


def test_the_key_is_revoked_when_the_run_fails(demo_brand):
    with pytest.raises(RuntimeError), simulator_key(demo_brand) as raw_key:
        assert live_keys().count() == 1
        assert raw_key
        raise RuntimeError("the portal answered nonsense")
    assert not live_keys().exists()
    assert ApiKey.objects.filter(name=KEY_NAME).count() == 1


class RefusingPortal(BaseHTTPRequestHandler):
    """Answers every request with a 503, and remembers what was asked."""

    paths: list[str] = []

    def do_GET(self):
        self.paths.append(self.path)
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_a_run_the_portal_refuses_ends_with_a_clear_error_and_no_live_key(demo_brand):
    RefusingPortal.paths = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingPortal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(CommandError, match="503"):
            call_command(
                "simulate_deliveries",
                base_url=f"http://127.0.0.1:{server.server_port}",
                interval=0,
                rounds=1,
                stdout=io.StringIO(),
            )
    finally:
        server.shutdown()
        server.server_close()
    assert not live_keys().exists()
    # It waited for the server with a request every portal answers, rather
    # than one that logs "Not Found" at every start.
    assert RefusingPortal.paths[0] == "/api/v1" + READY_PATH


def test_the_ready_probe_answers_without_a_key_or_a_warning(client, caplog):
    with caplog.at_level("WARNING", logger="django.request"):
        response = client.get("/api/v1" + READY_PATH)
    assert response.status_code == 200
    assert not caplog.records


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory):
    """A database of its own for the simulator in a process of its own."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in PORTAL_VARIABLES}
    env.update(DATABASE_URL=f"sqlite:///{path}", DJANGO_SETTINGS_MODULE="tracking_portal.settings")
    for command in (["migrate", "--no-input"], ["load_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
        )
    return path, env


def live_keys_in(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT COUNT(*) FROM shipments_apikey WHERE name = ? AND revoked_at IS NULL", [KEY_NAME]
        ).fetchone()[0]


def ignore_sigint():
    # What `sh` does to a job it starts with `&` (make run's recipe).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def read_line(process: subprocess.Popen, seconds: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(seconds):
            process.kill()
            pytest.fail("The simulator said nothing.")
    return process.stdout.readline()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_it_cleanly_and_revokes_its_key(demo_database, signum):
    path, env = demo_database
    port = free_port_in(PORTS)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "simulate_deliveries", "--base-url", f"http://127.0.0.1:{port}", "--wait", "120"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_sigint,
    )
    try:
        assert "waiting for the portal" in read_line(process, 60)
        assert live_keys_in(path) == 1
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped" in out
    assert live_keys_in(path) == 0
