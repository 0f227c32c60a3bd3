"""What the page benchmarks share: their own PostgreSQL database and a
uvicorn process serving the portal with bench/page_settings.py."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def parcel_fields(now) -> dict:
    """The benches' one kind of parcel: a London recipient with every
    contact, a destination on the map and a three-hour window from now."""
    from datetime import timedelta

    return {
        "recipient_name": "Ada Lovelace",
        "recipient_phone": "+447700900123",
        "recipient_email": "ada@example.com",
        "recipient_timezone": "Europe/London",
        "destination_line1": "1 Example Street",
        "destination_city": "London",
        "destination_postcode": "SW1A 2AA",
        "destination_lat": 51.5034,
        "destination_lng": -0.1276,
        "promised_window_start": now,
        "promised_window_end": now + timedelta(hours=3),
    }


def configure(database_url: str, redis_url: str) -> None:
    """Point this process at the benchmark's database and Redis, and set Django up."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.page_settings"
    import django

    django.setup()


def recreate_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def raise_open_files_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server:
    """One uvicorn process (one event loop) on loopback."""

    def __init__(
        self,
        port: int,
        database_url: str,
        redis_url: str,
        extra_args: list[str] | None = None,
        app: str = "tracking_portal.asgi:application",
    ):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "bench.page_settings",
            "PYTHONPATH": str(ROOT),
        }
        self.process = subprocess.Popen(
            [
                PYTHON, "-m", "uvicorn", app,
                "--host", "127.0.0.1", "--port", str(port),
                "--no-access-log", "--log-level", "warning", "--lifespan", "off",
                "--timeout-graceful-shutdown", "2", "--backlog", "8192",
                *(extra_args or []),
            ],
            cwd=ROOT,
            env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.base + "/bench/trivial/", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.2)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User and system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
