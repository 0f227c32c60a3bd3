"""Server layouts on one machine, in one run: what a minimal Django view and
a just-changed tracking page get under each server the portal could run on.

    .venv/bin/python bench/layouts.py [--duration 5] [--rounds 3] [--shipments 3000] [--workers 1]

Every layout serves the portal with bench/page_settings.py (DEBUG off, the
portal's middleware, PostgreSQL through its pool, Redis) and runs --workers
server processes:

- bare: an ASGI callable answering "ok" under uvicorn, no Django (the
  server's own ceiling);
- uvicorn: the portal's ASGI application, as the Procfile and README deploy
  it today (uvloop, httptools) — the baseline of every ratio;
- gunicorn sync / gunicorn gthread (4 threads a worker): the WSGI
  application, tracking_portal/wsgi.py;
- granian asgi / granian wsgi: the same two applications under granian.

Each layout is measured on the trivial view (/bench/trivial/, no query) and
on the just-changed page: wrk walks shipments whose cached pages were
invalidated the way record_event does, each once, so every request renders
(as bench/tracking_page.py). wrk -t2 -c32 on loopback, layouts alternating
within each round so the machine's noise hits all of them; medians printed
with their ratio to the uvicorn trivial view. It makes its own database
(dropped and created: --database-url) and uses --redis-url.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup
from bench.tracking_page import THREADS, WALK_SCRIPT, make_data, open_database, wrk

BIN = Path(_setup.PYTHON).parent
FIRST_PORT = 8450


async def bare(scope, receive, send):
    """The server's ceiling: an answer with nothing behind it."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def layouts(workers: int) -> dict[str, list[str]]:
    """Each layout's command line; {port} is filled in when it starts."""
    asgi, wsgi = "tracking_portal.asgi:application", "tracking_portal.wsgi:application"
    uvicorn = [_setup.PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--workers", str(workers)]
    uvicorn += ["--no-access-log", "--log-level", "warning", "--lifespan", "off", "--backlog", "8192"]
    gunicorn = [str(BIN / "gunicorn"), "--bind", "127.0.0.1:{port}", "--workers", str(workers)]
    gunicorn += ["--log-level", "warning", "--backlog", "8192"]
    granian = [str(BIN / "granian"), "--host", "127.0.0.1", "--port", "{port}", "--workers", str(workers)]
    granian += ["--no-ws", "--log-level", "warning", "--backlog", "8192", "--loop", "uvloop"]
    return {
        "bare (uvicorn)": [*uvicorn, "bench.layouts:bare"],
        "uvicorn": [*uvicorn, asgi],
        "gunicorn sync": [*gunicorn, "--worker-class", "sync", wsgi],
        "gunicorn gthread": [*gunicorn, "--worker-class", "gthread", "--threads", "4", wsgi],
        "granian asgi": [*granian, "--interface", "asginl", asgi],
        "granian wsgi": [*granian, "--interface", "wsgi", "--blocking-threads", "4", wsgi],
    }


class Layout:
    def __init__(self, name: str, command: list[str], port: int, database_url: str, redis_url: str):
        self.name = name
        self.base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "bench.page_settings",
            "PYTHONPATH": str(_setup.ROOT),
            # Without collectstatic WhiteNoise warns once per process; nothing else is hidden.
            "PYTHONWARNINGS": "ignore::UserWarning",
        }
        command = [part.replace("{port}", str(port)) for part in command]
        self.process = subprocess.Popen(command, cwd=_setup.ROOT, env=env, start_new_session=True)
        probe = "/" if name.startswith("bare") else "/bench/trivial/"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.base + probe, timeout=1).read()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shipments", type=int, default=3000, help="shipments for the just-changed walk")
    parser.add_argument("--workers", type=int, default=1, help="server processes per layout")
    parser.add_argument("--only", nargs="*", help="layouts to measure (names as printed), besides the baseline")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_layouts")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()

    commands = layouts(args.workers)
    if args.only:
        commands = {name: line for name, line in commands.items() if name in {"uvicorn", *args.only}}
    open_database(args.database_url, args.redis_url)
    print(f"Making {args.shipments} shipments with 30 events each…", flush=True)
    walk = make_data(args.shipments - 1)

    # As record_event's announcement does: the epochs moved on and each
    # page's message sent, which also drops the server's local copy.
    from pages.live.hub import CHANGED, publish

    running: list[Layout] = []
    results: dict[tuple[str, str], list[dict]] = {}
    walked_past = False
    try:
        for offset, (name, command) in enumerate(commands.items()):
            running.append(Layout(name, command, FIRST_PORT + offset, args.database_url, args.redis_url))
        with tempfile.TemporaryDirectory() as folder:
            paths = Path(folder) / "paths.txt"
            paths.write_text("".join(f"/t/{token}/\n" for token in walk))
            script = Path(folder) / "walk.lua"
            script.write_text(WALK_SCRIPT % {"paths": paths, "threads": THREADS})
            for layout in running:  # warm every server up
                wrk(layout.base + ("/" if layout.name.startswith("bare") else "/bench/trivial/"), 2)
            for round_number in range(1, args.rounds + 1):
                line = []
                for layout in running:
                    if layout.name.startswith("bare"):
                        run = wrk(layout.base + "/", args.duration)
                        results.setdefault((layout.name, "ok"), []).append(run)
                        line.append(f"{layout.name} {run['rps']:.0f}")
                        continue
                    trivial = wrk(layout.base + "/bench/trivial/", args.duration)
                    results.setdefault((layout.name, "trivial"), []).append(trivial)
                    publish(dict.fromkeys(walk, CHANGED), invalidate=True)
                    fresh = wrk(layout.base + f"/t/{walk[0]}/", args.duration, str(script))
                    walked_past |= fresh["requests"] > len(walk)
                    results.setdefault((layout.name, "just changed"), []).append(fresh)
                    line.append(f"{layout.name} {trivial['rps']:.0f}/{fresh['rps']:.0f}")
                print(f"round {round_number} (trivial/just changed req/s): " + ", ".join(line), flush=True)
    finally:
        for layout in running:
            layout.stop()

    medians = {
        key: {field: statistics.median(run[field] for run in runs) for field in ("rps", "p50", "p99")}
        for key, runs in results.items()
    }
    base = medians[("uvicorn", "trivial")]["rps"]
    errors = {key: sum(run["errors"] for run in runs) for key, runs in results.items()}
    print()
    print(
        f"wrk -t{THREADS} -c32 -d{args.duration}s, medians of {args.rounds} rounds, "
        f"{args.workers} server process(es) per layout; ratio to the uvicorn trivial view"
    )
    print(f"{'layout':<18}{'page':<14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}{'non-2xx':>9}")
    for (name, page), m in medians.items():
        print(
            f"{name:<18}{page:<14}{m['rps']:>9.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}"
            f"{m['rps'] / base:>8.2f}{errors[(name, page)]:>9}"
        )
    if walked_past:
        print("warning: a just-changed run walked past its shipments (some requests were warm); raise --shipments")
    print("target: a just-changed page >= 0.50 of the uvicorn trivial view")


if __name__ == "__main__":
    main()
