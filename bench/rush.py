"""The morning rush on one machine: parcels go out for delivery through the
API while their customers watch the page live and the drivers ping.

    .venv/bin/python bench/rush.py [--scale 1.0] [--rush-seconds 60] [--open-seconds 30]
                                   [--batch 100] [--web-workers 1] [--worker-concurrency 4]
                                   [--background-concurrency 2] [--vans on-schedule|away]
                                   [--email-wait 180] [--background-nice 0]

At --scale 1: 5,000 parcels, 5,000 customers, 50 drivers with routes of 100
stops. The customers open their tracking page (GET /t/<token>/) over
--open-seconds and keep its stream open (/t/<token>/events/); then the
parcels go out for delivery through POST /api/v1/events in batches of
--batch spread over --rush-seconds, while each driver posts a ping to
/api/v1/locations every 5 s. Whenever a stream says the page changed (at
its opening too, when the epoch the page names has moved), its customer
loads the page's fragment (htmx) again, as the page's script does
(--reload first: only on the first change); when the stream sends what
changed itself (the tracking page's stream does: the changed sections, or
the new status card when only the ETA moved), it loads nothing. A batch
answered 503 or 429 is sent again after its Retry-After, as a brand's
integration does (the answer still counts as an error). Messages go out through a
real Celery worker (beat beside it, for the sweep): each status change's
webhook to a receiver on loopback (a process of its own), SMS and
email to the console backends.

Printed: page load p50/p95 (first opens and the loads after a change),
event to open page p95 (from the status change's row, written in the
event's transaction, to the stream's message at the client), how late the
client's own event loop woke during the rush (a share of event to open
page that is the client's, not the server's), event to webhook p95 and
max, event to each text and email sent (their rows' sent_at; no target:
the emails follow in the "later" queue, waited for up to --email-wait
seconds after the webhooks), and every error. Targets on the 2-core
machine: no errors, page p95 < 200 ms, event to open page p95 < 1 s,
every webhook within 10 s of its event.

One uvicorn server as the Procfile runs it (--web-workers processes),
PostgreSQL and Redis on loopback; its own database (dropped and created:
--database-url) and --redis-url.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup
from bench.rush_setup import make_data, set_up, start_celery, stop, warm_up

PORT = 8460
PING_EVERY = 5.0
# How the vans move, as (start lat, lng, degrees north per ping). Every
# parcel's door is at 51.5034, -0.1276 (bench/_setup.parcel_fields).
# "on-schedule": 4 km south of the doors, driving towards them at the
# speed the ETA assumes with no history (shipments.eta_model: 7 m/s on the
# road, a detour of 1.3: 5.4 m/s in a straight line), so that the windows
# hold, as on a morning that goes to plan. "away": from 51.5, -0.12 north at
# 11 m/s, past the doors and away from them, so that every ping moves every
# window on the van: the worst case for the ETA's messages.
VANS = {"on-schedule": (51.5034 - 0.036, -0.1276, 5.38 * PING_EVERY / 111_195), "away": (51.5, -0.12, 0.0005)}
STREAM_URL = re.compile(rb'sse-connect="([^"]+)"')


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def summary(name: str, values: list[float], target: str) -> str:
    p50, p95, top = percentile(values, 0.5), percentile(values, 0.95), max(values, default=float("nan"))
    return f"  {name:<18}{len(values):>6}  p50 {p50:7.0f} ms  p95 {p95:7.0f} ms  max {top:7.0f} ms   {target}"


class Rush:
    """The client side: customers, the brand's batches, the drivers."""

    def __init__(self, base: str, key: str, reload_every: bool = True):
        self.reload_every = reload_every
        self.base = base
        self.auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.page_ms: list[float] = []
        self.first_change: dict[str, float] = {}
        self.changes_after_first = 0
        self.cards = 0
        self.pushed = 0
        self.retried: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.open_streams = 0
        self.reloading = 0
        self.rushing = False
        self.done = asyncio.Event()
        self.loop_lag_ms: list[float] = []

    async def watch_own_lag(self, every: float = 0.05) -> None:
        """How late this client's own event loop wakes during the rush: a
        message it reads late counts as late in event → open page, though
        the server sent it in time."""
        while not self.done.is_set():
            began = time.perf_counter()
            await asyncio.sleep(every)
            self.loop_lag_ms.append((time.perf_counter() - began - every) * 1000)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def load_page(self, session, token: str, *, again: bool = False) -> bytes:
        """The page, or (again) what the page's script asks for when its stream says it changed."""
        headers = {"Accept-Language": "en", **({"HX-Request": "true", "HX-Target": "refresh"} if again else {})}
        began = time.perf_counter()
        try:
            async with session.get(f"{self.base}/t/{token}/", headers=headers) as response:
                body = await response.read()
                if response.status != 200:
                    self.error(f"page {response.status}")
                    return b""
        except Exception as exc:  # every failure is counted, by kind
            self.error(f"page {type(exc).__name__}")
            return b""
        self.page_ms.append((time.perf_counter() - began) * 1000)
        return body

    async def customer(self, session, token: str) -> None:
        page = await self.load_page(session, token)
        # The stream the page's own script opens: it names the epoch the
        # page was rendered at, and says "changed" at once if that moved.
        found = STREAM_URL.search(page)
        events = found.group(1).decode().replace("&amp;", "&") if found else f"/t/{token}/events/"
        try:
            async with session.get(f"{self.base}{events}") as response:
                if response.status != 200:
                    self.error(f"stream {response.status}")
                    return
                self.open_streams += 1
                try:
                    async for line in response.content:
                        if line.startswith(b"event: page"):
                            # What changed, sent by the stream itself: htmx
                            # swaps it in, and the page loads nothing.
                            self.pushed += 1
                            if not self.rushing:
                                continue
                            if token in self.first_change:
                                self.changes_after_first += 1
                            else:
                                self.first_change[token] = time.time()
                            continue
                        if line.startswith(b"event: status"):
                            # The new status card itself (only the times
                            # moved): the page's script puts it in place
                            # and loads nothing.
                            self.cards += 1
                            if self.rushing and token in self.first_change:
                                self.changes_after_first += 1
                            continue
                        if not line.startswith((b"event: changed", b"event: final")):
                            continue
                        if not self.rushing:
                            # A page behind when its stream opened: it looks
                            # again, as the script does; no event of the rush.
                            await self.load_page(session, token, again=True)
                            continue
                        if token in self.first_change:
                            self.changes_after_first += 1
                            if not self.reload_every:
                                continue
                        else:
                            self.first_change[token] = time.time()
                        self.reloading += 1
                        try:
                            await self.load_page(session, token, again=True)
                        finally:
                            self.reloading -= 1
                finally:
                    self.open_streams -= 1
                if not self.done.is_set():
                    self.error("stream closed by the server")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.done.is_set():
                self.error(f"stream {type(exc).__name__}")

    async def post(self, session, path: str, body: dict, what: str, *, tries: int = 1) -> dict | None:
        """POST, and with ``tries`` > 1 send it again after a 503 or 429 as
        a brand's integration does (the API's contract: Retry-After). Every
        such answer still counts as an error; a retry only keeps the events."""
        for attempt in range(tries):
            try:
                async with session.post(self.base + path, data=json.dumps(body), headers=self.auth) as response:
                    answer = await response.json(content_type=None)
                    if response.status in (200, 201):
                        return answer
                    self.error(f"{what} {response.status}")
                    if response.status not in (429, 503) or attempt + 1 == tries:
                        return None
                    self.retried[what] = self.retried.get(what, 0) + 1
                    wait = float(response.headers.get("Retry-After", "1"))
            except Exception as exc:
                self.error(f"{what} {type(exc).__name__}")
                return None
            await asyncio.sleep(min(wait, 10.0))
        return None

    async def send_batches(self, session, numbers: list[str], batch: int, seconds: float) -> None:
        batches = [numbers[start : start + batch] for start in range(0, len(numbers), batch)]
        began = time.monotonic()
        sent = []
        for n, chunk in enumerate(batches):
            await asyncio.sleep(max(0.0, began + n * seconds / len(batches) - time.monotonic()))
            at = dt.datetime.now(dt.UTC).isoformat()
            events = [
                {"tracking_number": number, "status": "out_for_delivery", "occurred_at": at, "external_id": "van"}
                for number in chunk
            ]
            sent.append(
                asyncio.create_task(self.post(session, "/api/v1/events", {"events": events}, "events", tries=4))
            )
        for answer in await asyncio.gather(*sent):
            if answer is not None and answer.get("accepted") != len(answer.get("results", [])):
                self.error("events not accepted")

    async def driver(self, session, ref: str, offset: float) -> None:
        await asyncio.sleep(offset)
        lat, lng, step = VANS[self.vans]
        while not self.done.is_set():
            lat += step
            ping = {"lat": lat, "lng": lng, "recorded_at": dt.datetime.now(dt.UTC).isoformat()}
            await self.post(session, "/api/v1/locations", {"driver_ref": ref, "pings": [ping]}, "ping")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), PING_EVERY)


async def run_client(args, base, key, tokens, numbers, drivers) -> Rush:
    import aiohttp

    rush = Rush(base, key, reload_every=args.reload == "every")
    rush.vans = args.vans
    # No pool cap (aiohttp's default is 100) and no overall timeout: streams live long.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    pages = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)
    api = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)
    async with pages, api:
        customers = []
        began = time.monotonic()
        for n, token in enumerate(tokens):
            await asyncio.sleep(max(0.0, began + n * args.open_seconds / len(tokens) - time.monotonic()))
            customers.append(asyncio.create_task(rush.customer(pages, token)))
        deadline = time.monotonic() + 30
        while rush.open_streams < len(tokens) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        print(f"  {rush.open_streams} streams open; page loads so far p95 "
              f"{percentile(rush.page_ms, 0.95):.0f} ms; the rush begins", flush=True)  # fmt: skip
        opened_page_ms = len(rush.page_ms)
        rush.rushing = True
        watcher = asyncio.create_task(rush.watch_own_lag())
        pingers = [
            asyncio.create_task(rush.driver(api, ref, n * PING_EVERY / len(drivers))) for n, ref in enumerate(drivers)
        ]
        await rush.send_batches(api, numbers, args.batch, args.rush_seconds)
        deadline = time.monotonic() + 15
        while (len(rush.first_change) < len(tokens) or rush.reloading) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        rush.done.set()
        rush.opened_page_ms = opened_page_ms
        for task in customers:
            task.cancel()
        await asyncio.gather(watcher, *pingers, *customers, return_exceptions=True)
    return rush


def waiting_emails(change_ids: list[int]) -> int:
    """How many of these status changes' emails are still to be sent."""
    from notifications.models import Channel, Notification, State

    emails = Notification.objects.filter(status_change_id__in=change_ids, channel=Channel.EMAIL)
    return emails.filter(state__in=[State.QUEUED, State.SENDING]).count()


def customer_messages(change_ids: list[int]) -> dict[str, tuple[list[float], int]]:
    """For the texts and the emails of these status changes: from the event
    to each one sent (the row's sent_at, in ms), and how many were planned."""
    from notifications.models import Channel, Notification

    rows = Notification.objects.filter(status_change_id__in=change_ids, channel__in=[Channel.SMS, Channel.EMAIL])
    found: dict[str, tuple[list[float], int]] = {}
    for channel, sent_at, created_at in rows.values_list("channel", "sent_at", "status_change__created_at"):
        sent_ms, planned = found.get(channel, ([], 0))
        if sent_at is not None:
            sent_ms.append((sent_at - created_at).total_seconds() * 1000)
        found[channel] = (sent_ms, planned + 1)
    return dict(sorted(found.items(), reverse=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 5,000 parcels and customers, 50 drivers")
    parser.add_argument("--rush-seconds", type=float, default=60.0, help="the out-for-delivery batches' span")
    parser.add_argument("--open-seconds", type=float, default=30.0, help="the customers' first page loads' span")
    parser.add_argument("--batch", type=int, default=100, help="events per API call")
    parser.add_argument("--web-workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--worker-concurrency", type=int, default=4, help="the messages worker's processes")
    parser.add_argument("--background-concurrency", type=int, default=2, help="the background worker's processes")
    parser.add_argument(
        "--email-wait", type=float, default=180, help="seconds to wait, after the webhooks, for the emails to be sent"
    )
    parser.add_argument(
        "--background-nice", type=int, default=0, help="the background worker's niceness (the Procfile's nice -n)"
    )
    parser.add_argument(
        "--reload",
        choices=["every", "first"],
        default="every",
        help="load the page again on every change message, as the page's script does, or only on the first "
        "(the event's; the ETA's later changes then reload nothing: what the rush would cost if they didn't)",
    )
    parser.add_argument("--vans", choices=sorted(VANS), default="on-schedule", help="how the vans move (see VANS)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_rush")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()
    parcels = max(1, round(5000 * args.scale))
    drivers = max(1, round(50 * args.scale))

    # Each stream is a socket at both ends, in this process and the server's.
    limit = _setup.raise_open_files_limit(2 * parcels + 1000)
    if limit < parcels + 500:
        sys.exit(f"open files limited to {limit}: raise `ulimit -n` to at least {2 * parcels + 1000}")
    os.environ["API_RATE_LIMIT"] = os.environ.get("API_RATE_LIMIT", "1200/60")
    receiver, receiver_url, arrivals = set_up(args.database_url, args.redis_url)

    hooks: dict[int, float] = {}

    def collect() -> None:
        while True:
            change_id, at = arrivals.get()
            hooks.setdefault(change_id, at)

    threading.Thread(target=collect, daemon=True).start()

    print(f"Making {parcels} parcels on {drivers} routes…", flush=True)
    tokens, numbers, driver_refs, key = make_data(parcels + 1, drivers, receiver_url)
    # One parcel more, out for delivery before the rush: the worker's
    # processes have imported and connected by the time it is answered.
    warm_number, _ = numbers.pop(), tokens.pop()
    from tracking_portal.celery import app as celery_app

    celery_app.control.purge()
    worker_log = Path(tempfile.gettempdir()) / f"rush_worker_{os.getpid()}.log"
    # The Procfile's two workers: the messages (status changes', notices',
    # then the emails left for later), and the ETAs, alerts and the rest on
    # "background".
    worker = start_celery(
        worker_log, "worker", "-Q", "celery,notices,later", "--pool", "prefork",
        "--concurrency", str(args.worker_concurrency), "--without-heartbeat", "--without-gossip",
        "--without-mingle", "--hostname", f"rush-{os.getpid()}@%h",
    )  # fmt: skip
    background = start_celery(
        worker_log.with_suffix(".background.log"), "worker", "-Q", "background", "--pool", "prefork",
        "--concurrency", str(args.background_concurrency), "--without-heartbeat", "--without-gossip",
        "--without-mingle", "--hostname", f"rush-background-{os.getpid()}@%h", niceness=args.background_nice,
    )  # fmt: skip
    # Beat's sweep sends what could not be enqueued after a commit (Redis busy).
    schedule = Path(tempfile.mkdtemp()) / "celerybeat-schedule"
    beat = start_celery(worker_log.with_suffix(".beat.log"), "beat", "--schedule", str(schedule))
    server = _setup.Server(PORT, args.database_url, args.redis_url, ["--workers", str(args.web_workers)])
    try:
        warm_up(server.base, key, warm_number, hooks)
        started = time.time()
        rush = asyncio.run(run_client(args, server.base, key, tokens, numbers, driver_refs))
        from shipments.models import StatusChange

        changes = {
            number: (change_id, at.timestamp())
            for change_id, number, at in StatusChange.objects.filter(
                new_status="out_for_delivery", created_at__gte=dt.datetime.fromtimestamp(started, dt.UTC)
            ).values_list("id", "shipment__tracking_number", "created_at")
        }
        # The target is every webhook within 10 s of its event: wait a little longer.
        deadline = time.monotonic() + 12
        while not set(cid for cid, _ in changes.values()) <= set(hooks) and time.monotonic() < deadline:
            time.sleep(0.2)
        change_ids = [cid for cid, _ in changes.values()]
        deadline = time.monotonic() + args.email_wait
        while waiting_emails(change_ids) and time.monotonic() < deadline:
            time.sleep(1)
        customers = customer_messages(change_ids)
    finally:
        server.stop()
        stop(worker)
        stop(background)
        stop(beat)
        receiver.terminate()

    by_token = dict(zip(numbers, tokens, strict=True))
    to_page = [
        (rush.first_change[by_token[n]] - at) * 1000
        for n, (_, at) in changes.items()
        if by_token[n] in rush.first_change
    ]
    to_hook = [(hooks[cid] - at) * 1000 for cid, at in changes.values() if cid in hooks]
    missing_changes = parcels - len(changes)
    missing_pages = len(changes) - len(to_page)
    missing_hooks = len(changes) - len(to_hook)
    for what, count in (("status changes not recorded", missing_changes), ("open pages never told", missing_pages),
                        ("webhooks not received", missing_hooks)):  # fmt: skip
        if count:
            rush.errors[what] = count
    first, after = rush.page_ms[: rush.opened_page_ms], rush.page_ms[rush.opened_page_ms :]
    print()
    print(
        f"morning rush: {parcels} parcels in batches of {args.batch} over {args.rush_seconds:.0f} s, {parcels} "
        f"customers (opened over {args.open_seconds:.0f} s), {drivers} drivers pinging every {PING_EVERY:.0f} s "
        f"(vans {args.vans}); "
        f"{args.web_workers} uvicorn process(es), workers' concurrency {args.worker_concurrency} (messages) "
        f"and {args.background_concurrency} (background)"
    )
    print(summary("page loads", rush.page_ms, "target p95 < 200 ms"))
    print(
        f"{'':22}first opens p95 {percentile(first, 0.95):.0f} ms, after a change p95 {percentile(after, 0.95):.0f} ms"
    )
    print(summary("event → open page", to_page, "target p95 < 1 s"))
    print(summary("client's own lag", rush.loop_lag_ms, "its event loop waking late, in the figure above"))
    print(summary("event → webhook", to_hook, "target max < 10 s"))
    for channel, (sent_ms, planned) in customers.items():
        # The texts go out with the webhooks; the emails follow in the
        # "later" queue, which the worker takes when the default is empty.
        print(summary(f"event → {channel} sent", sent_ms, f"{planned - len(sent_ms)} of {planned} not sent yet"))
    print(
        # A ping's message carries the position and asks for no load; a
        # later change is the page's ETA, recomputed after the van's pings
        # and scans, which the stream sends as the new status card.
        f"  later change messages (the ETA's): {rush.changes_after_first}, "
        + ("each 'changed' loaded the page again" if rush.reload_every else "not loaded again (--reload first)")
    )
    print(f"  sent over the streams, no page load: {rush.pushed} changed pages, {rush.cards} status cards")
    print(f"  errors: {sum(rush.errors.values())} {dict(sorted(rush.errors.items())) or ''}")
    if rush.retried:
        print(f"  sent again after a 503 or 429 (each answer counted above): {rush.retried}")
    verdict = {
        "no errors": not rush.errors,
        "page p95 < 200 ms": percentile(rush.page_ms, 0.95) < 200,
        "event → open page p95 < 1 s": percentile(to_page, 0.95) < 1000,
        "every webhook within 10 s": not missing_hooks and max(to_hook, default=0) < 10_000,
    }
    print("  " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in verdict.items()))
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; worker log {worker_log}")
    if not all(verdict.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
