"""The Procfile, started by honcho as a newcomer would: every process comes up
on one machine, serves, and goes away on SIGTERM.

It needs what the processes need (a real PostgreSQL and Redis), so it skips
where DATABASE_URL is SQLite or REDIS_URL is unset, like the other tests
that start real workers.
"""

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)
BIN = BASE_DIR / ".venv" / "bin"
PROCFILE = BASE_DIR / "Procfile"

pytestmark = [
    pytest.mark.skipif(
        not (settings.REDIS_URL and settings.DATABASES["default"]["ENGINE"].endswith("postgresql")),
        reason="needs a real Redis and PostgreSQL (set REDIS_URL and DATABASE_URL, as .ci/run does)",
    ),
    pytest.mark.skipif(not (BIN / "honcho").exists(), reason="honcho is not installed (requirements-dev.txt)"),
    pytest.mark.django_db(transaction=True),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"Timed out after {timeout}s waiting for {what}.")


def descendants(pid: int) -> set[int]:
    """Every living process under pid (children, theirs, and so on)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def procfile_names() -> list[str]:
    return [line.split(":", 1)[0] for line in PROCFILE.read_text().splitlines() if re.match(r"^\w+:", line)]


def tracking_page_answers(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200 and b"BP-PROCFILE-1" in response.read()
    except (OSError, urllib.error.HTTPError):
        return False


def own_redis_db() -> str:
    """A Redis database of this test's own, emptied: on the suite's, the
    worker would take up the tasks other tests left queued (nobody consumes
    them there) and be busy with them, its pool's processes killed mid-task
    by the SIGTERM honcho sends to each process group, when it is told to
    stop."""
    import redis

    url = urlsplit(settings.REDIS_URL)
    db = (int(url.path.strip("/") or 0) + 8) % 16
    own = urlunsplit(url._replace(path=f"/{db}"))
    redis.Redis.from_url(own).flushdb()
    return own


def test_honcho_starts_every_process_of_the_procfile_and_sigterm_stops_them_all(tmp_path, make_shipment):
    shipment = make_shipment("BP-PROCFILE-1")
    port = free_port()
    database = urlsplit(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        # The Procfile's commands are the venv's python and celery, as on a
        # platform whose PATH starts with the app's environment.
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(BASE_DIR),
        "DJANGO_SETTINGS_MODULE": "tracking_portal.settings",
        "DATABASE_URL": urlunsplit(database._replace(path="/" + connection.settings_dict["NAME"])),
        "DATABASE_POOL_MIN": "1",
        "DATABASE_POOL_MAX": "4",
        "REDIS_URL": own_redis_db(),
        "SMS_BACKEND": "console",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "honcho.log"
    with open(log_path, "w") as log:
        # Run from a scratch directory so beat's schedule file lands there,
        # not in the checkout; no .env is read but the settings' own.
        honcho = subprocess.Popen(
            [BIN / "honcho", "start", "--no-colour", "-f", PROCFILE, "-e", os.devnull, "-p", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    read_log = log_path.read_text
    try:
        page = f"http://127.0.0.1:{port}/t/{shipment.public_token}/"
        wait_for(lambda: tracking_page_answers(page), what="web to answer the tracking page")
        wait_for(lambda: re.search(r"worker\.1\s+\|.*ready\.", read_log()), what="the worker to be ready")
        wait_for(lambda: re.search(r"background\.1\s+\|.*ready\.", read_log()), what="the background worker")
        wait_for(lambda: re.search(r"beat\.1\s+\|.*beat: Starting", read_log()), what="beat to start")
        started = {name for name in procfile_names() if re.search(rf"^\S+ {name}\.1\s+\| ", read_log(), re.M)}
        assert started == set(procfile_names()), read_log()
        processes = descendants(honcho.pid)
        assert len(processes) >= len(started)
    finally:
        os.kill(honcho.pid, signal.SIGTERM)
        try:
            honcho.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
            raise AssertionError("honcho did not stop within 40 s of SIGTERM:\n" + read_log()) from None

    output = read_log()
    # honcho has returned; give the last of them a moment to be reaped.
    deadline = time.monotonic() + 5
    while (left := {pid for pid in processes if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left running after SIGTERM: {left}\n{output}"
    for name in started:
        # honcho reports each one's end: 0, or killed by the SIGTERM it was sent (-15).
        ended = re.search(rf"system\s+\| {name}\.1 stopped \(rc=(-?\d+)\)", output)
        assert ended, f"{name} did not report stopping:\n{output}"
        assert ended.group(1) in ("0", "-15"), output
    assert re.search(r"web\.1\s+\|.*Finished server process", output), output
    assert re.search(r"worker\.1\s+\|.*Warm shutdown", output), output
    assert re.search(r"background\.1\s+\|.*Warm shutdown", output), output
    assert "Traceback" not in output, output
