"""Notification latency: event committed → transport called, through a real
Celery worker on Redis.

    .venv/bin/python bench/notify_latency.py [--rate 200] [--seconds 30] [--burst 1000]
                                               [--concurrency 6] [--pool prefork] [--workers 1]
                                               [--recorders 1] [--threads 4]

It makes its own database (test_<name> of DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/portal_notify_bench) and uses Redis db 7
(REDIS_URL to change). The transport is the brand webhook, posting to a local
fake endpoint in a process of its own that notes when each request arrives.
Events are recorded as the API records them (services.record_brand_events, a
transaction per call); the commit time is noted when the commit returns,
before the portal's own on_commit callbacks run.

Three runs:
  baseline  in-process (Celery eager): planning and sending run right after
            commit in the recording process, no queue; the floor.
  steady    --rate state-changing events/s for --seconds, each its own
            transaction, recorded by --recorders processes (as by that many
            web server processes), through the worker (target p95 < 100 ms).
  burst     --burst events committed in one transaction, as one API batch
            (target: all sent within 2 s of the commit).
Latencies are printed as p50/p95/p99 with their ratio to the baseline.
"""

import argparse
import itertools
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_notify_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/7")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Measured as deployed: no query log in the recorder or the worker.
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "notify-latency-bench")
# The brand's endpoint is this script's own listener on loopback, which a
# deployment refuses (shipments/outbound.py); the worker inherits this too.
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")

import django  # noqa: E402

django.setup()

from django.db import close_old_connections, connection, connections  # noqa: E402
from django.dispatch import receiver  # noqa: E402

from notifications.models import BrandNotificationSettings  # noqa: E402
from shipments import services, signals  # noqa: E402
from shipments.models import Brand, EventSource  # noqa: E402
from shipments.services import NewEvent  # noqa: E402
from tracking_portal.celery import app as celery_app  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BRAND_SLUG = "bench"
CYCLE = ["in_transit", "out_for_delivery", "failed_attempt"]
PORTS = range(8530, 8540)
WORKER_LOG = Path(tempfile.gettempdir()) / "notify_latency_worker.log"


def serve_endpoint(port_queue, arrivals):
    """The brand's webhook endpoint, in a process of its own as a brand's
    server would be (in this process it would wait for the recorder's
    threads to let go of the GIL): notes when each status change's webhook
    arrives and passes it on."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            now = time.time()
            body = self.rfile.read(int(self.headers["content-length"]))
            arrivals.put((json.loads(body)["data"]["status_change_id"], now))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    for port in PORTS:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
            break
        except OSError:
            continue
    else:
        port_queue.put(None)
        return
    server.daemon_threads = True
    server.request_queue_size = 1024
    port_queue.put(server.server_port)
    server.serve_forever()


class Endpoint:
    """What the endpoint process saw: the first arrival per status change,
    and how many requests came in all."""

    def __init__(self):
        self.arrived: dict[int, float] = {}
        self.requests = 0
        self.lock = threading.Lock()
        context = multiprocessing.get_context("spawn")
        ports, self.arrivals = context.Queue(), context.Queue()
        self.process = context.Process(target=serve_endpoint, args=(ports, self.arrivals), daemon=True)
        self.process.start()
        port = ports.get(timeout=30)
        if port is None:
            sys.exit(f"No free port in {PORTS}.")
        self.url = f"http://127.0.0.1:{port}/hooks"
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        while True:
            change_id, at = self.arrivals.get()
            with self.lock:
                self.arrived.setdefault(change_id, at)
                self.requests += 1

    def stop(self):
        self.process.terminate()


# Per recording thread: when its connection last committed, and the status
# changes that commit announced.
_commits = threading.local()


def _note_commits():
    """Note the moment each commit of this thread's connection returns, before
    any on_commit callback runs (the portal's enqueue the notification
    work), and the status changes the commit announced."""
    wrapper = connections["default"]
    if getattr(wrapper, "bench_noting", False):
        return
    run_hooks = wrapper.run_and_clear_commit_hooks

    def noted():
        if getattr(_commits, "in_hooks", False):
            # A commit of a callback's own (the in-process baseline plans
            # and sends inside them): the event's commit is the one noted.
            run_hooks()
            return
        _commits.at = time.time()
        _commits.changes = []
        _commits.in_hooks = True
        try:
            run_hooks()
        finally:
            _commits.in_hooks = False

    wrapper.run_and_clear_commit_hooks = noted
    wrapper.bench_noting = True


@receiver(signals.shipments_changed, dispatch_uid="bench.notify_latency")
def _announced(sender, changes, **kwargs):
    _commits.changes.extend(change.status_change_id for change in changes if change.status_change_id)


class Recorder:
    """Records state-changing events the way the API does (one brand's
    batch, here of one event, in a transaction of its own) and notes each
    commit time."""

    def __init__(self, brand, tracking_numbers, counts=None, clock_ms=0):
        self.brand = brand
        self.tracking_numbers = tracking_numbers
        self.counts = counts or dict.fromkeys(tracking_numbers, 0)
        self.committed: dict[int, float] = {}
        self.lock = threading.Lock()
        self.set_clock(clock_ms)

    def set_clock(self, start_ms):
        """Events occur a millisecond apart from here on; each recorder
        (and each phase) gets a span of its own, so every event is later
        than its shipment's last."""
        base = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=start_ms)
        self.clock = (base + timedelta(milliseconds=n) for n in itertools.count())

    def next_event(self, tracking_number):
        with self.lock:
            k = self.counts[tracking_number]
            self.counts[tracking_number] = k + 1
            occurred_at = next(self.clock)
        return NewEvent(
            status=CYCLE[k % len(CYCLE)],
            occurred_at=occurred_at,
            source=EventSource.API,
            external_id=f"{tracking_number}-{k}",
            carrier_code="SCAN",
        )

    def record(self, tracking_numbers):
        """One transaction for these shipments' next events, as one API
        call; returns its commit time."""
        _note_commits()
        _commits.changes = []
        items = [(number, self.next_event(number)) for number in tracking_numbers]
        outcomes = services.record_brand_events(brand=self.brand, items=items)
        assert all(outcome.result == "accepted" for outcome in outcomes), outcomes
        for change_id in _commits.changes:
            self.committed[change_id] = _commits.at
        return _commits.at

    def record_one(self, tracking_number):
        self.record([tracking_number])


def paced(recorder, tracking_numbers, rate, seconds, threads, start_wall=None):
    """Record `rate` events/s for `seconds`, each at its scheduled time,
    from `start_wall` (a time.time()) on."""
    total = int(rate * seconds)
    start = time.perf_counter() + (0.2 if start_wall is None else start_wall - time.time())
    order = itertools.cycle(tracking_numbers)
    jobs = [(start + n / rate, next(order)) for n in range(total)]
    late = 0

    def run(job):
        nonlocal late
        due, tracking_number = job
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.05:
            late += 1
        try:
            recorder.record_one(tracking_number)
        finally:
            close_old_connections()

    with ThreadPoolExecutor(threads) as pool:
        # Hand jobs over in time order; the pool's threads absorb the jitter
        # of single commits.
        list(pool.map(run, jobs))
    elapsed = time.perf_counter() - start
    return total / elapsed, late


# Each recording process's events occur in a span of their own.
CLOCK_SPAN_MS = 10_000_000


def record_share(tracking_numbers, counts, clock_ms, rate, seconds, threads, start_wall, results):
    """One recording process of the steady run, as one web server process
    of several: its share of the shipments at its share of the rate."""
    recorder = Recorder(Brand.objects.get(slug=BRAND_SLUG), tracking_numbers, counts, clock_ms)
    achieved, late = paced(recorder, tracking_numbers, rate, seconds, threads, start_wall)
    results.put((recorder.committed, recorder.counts, achieved, late))


def steady_run(recorder, tracking_numbers, args):
    """The steady run through --recorders processes, interleaved; returns
    the commit times of its status changes, the rate achieved and how many
    events were recorded late."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    n = args.recorders
    start_wall = time.time() + 3  # the processes import Django first
    processes = [
        context.Process(
            target=record_share,
            args=(
                tracking_numbers[i::n],
                {number: recorder.counts[number] for number in tracking_numbers[i::n]},
                CLOCK_SPAN_MS * (i + 1),
                args.rate / n,
                args.seconds,
                args.threads,
                start_wall + i / args.rate,
                results,
            ),
        )
        for i in range(n)
    ]
    for process in processes:
        process.start()
    committed, achieved, late = {}, 0.0, 0
    for _ in processes:
        share_committed, counts, share_achieved, share_late = results.get(timeout=args.seconds + 120)
        committed.update(share_committed)
        recorder.counts.update(counts)
        achieved += share_achieved
        late += share_late
    for process in processes:
        process.join()
    recorder.committed.update(committed)
    recorder.set_clock(CLOCK_SPAN_MS * (n + 1))
    return list(committed), achieved, late


def wait_all(endpoint, change_ids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with endpoint.lock:
            missing = [c for c in change_ids if c not in endpoint.arrived]
        if not missing:
            return []
        time.sleep(0.02)
    return missing


def percentiles(values):
    values = sorted(values) or [float("nan")]
    pick = lambda q: values[min(len(values) - 1, round(q * (len(values) - 1)))]  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": values[-1]}


def latencies_ms(endpoint, recorder, change_ids):
    return [(endpoint.arrived[c] - recorder.committed[c]) * 1000 for c in change_ids]


def start_worker(concurrency, log_path, pool="prefork", name="bench"):
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    log = open(log_path, "w")  # noqa: SIM115 - lives as long as the worker
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tracking_portal",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
            "--hostname",
            f"{name}-{os.getpid()}@%h",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process


def children_cpu():
    """Milliseconds of CPU used by the child processes that have ended."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (used.ru_utime + used.ru_stime) * 1000


def stop_worker(worker):
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(5)


def row(name, stats, baseline=None):
    cells = [f"{stats[k]:7.1f}" for k in ("p50", "p95", "p99", "max")]
    ratio = f"  ×{stats['p95'] / baseline['p95']:.1f} p95 vs baseline" if baseline else ""
    return f"  {name:<9} p50 {cells[0]} ms  p95 {cells[1]} ms  p99 {cells[2]} ms  max {cells[3]} ms{ratio}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=6, help="worker processes (or threads)")
    parser.add_argument("--workers", type=int, default=1, help="worker instances, each with its own pool")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"], help="Celery worker pool")
    parser.add_argument("--recorders", type=int, default=1, help="recording processes for the steady run")
    parser.add_argument("--threads", type=int, default=4, help="recording threads per recording process")
    parser.add_argument("--baseline-events", type=int, default=300)
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit("This benchmark is for PostgreSQL: set DATABASE_URL=postgres://…")
    database_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    # The recording and worker processes use the database made here.
    database = urlsplit(os.environ["DATABASE_URL"])
    os.environ["DATABASE_URL"] = urlunsplit(database._replace(path="/" + connection.settings_dict["NAME"]))
    workers, endpoint = [], None
    try:
        endpoint = Endpoint()
        brand = Brand.objects.create(name="Bench", slug=BRAND_SLUG, webhook_url=endpoint.url, webhook_secret=SECRET)
        BrandNotificationSettings.objects.create(brand=brand, sms_statuses=[], email_statuses=[])
        tracking_numbers = [f"B{n:06d}" for n in range(max(args.burst, 1000))]
        for tracking_number in tracking_numbers:
            services.create_shipment(brand=brand, tracking_number=tracking_number)
        recorder = Recorder(brand, tracking_numbers)

        # Baseline: no queue, the send runs in this process right after commit.
        celery_app.conf.task_always_eager = True
        before = set(recorder.committed)
        for tracking_number in tracking_numbers[: args.baseline_events]:
            recorder.record_one(tracking_number)
            time.sleep(0.005)
        celery_app.conf.task_always_eager = False
        baseline_ids = [c for c in recorder.committed if c not in before]
        assert not wait_all(endpoint, baseline_ids, 10), "baseline sends missing"
        baseline = percentiles(latencies_ms(endpoint, recorder, baseline_ids))

        celery_app.control.purge()
        workers = [
            start_worker(args.concurrency, WORKER_LOG.with_suffix(f".{n}.log"), args.pool, f"bench{n}")
            for n in range(args.workers)
        ]
        # Warm-up: the worker's processes connect and import on first use.
        warm = set(recorder.committed)
        for tracking_number in tracking_numbers[:100]:
            recorder.record_one(tracking_number)
        warm_ids = [c for c in recorder.committed if c not in warm]
        missing = wait_all(endpoint, warm_ids, 60)
        assert not missing, f"warm-up: {len(missing)} not sent; see {WORKER_LOG.with_suffix('.0.log')}"

        before_steady = children_cpu()
        steady_ids, achieved, late = steady_run(recorder, tracking_numbers, args)
        recorders_cpu = children_cpu() - before_steady
        missing = wait_all(endpoint, steady_ids, 60)
        steady = percentiles(latencies_ms(endpoint, recorder, [c for c in steady_ids if c not in missing]))
        steady_span = max([endpoint.arrived[c] for c in steady_ids if c not in missing] or [time.time()]) - min(
            recorder.committed[c] for c in steady_ids
        )

        time.sleep(1)
        before = set(recorder.committed)
        committed_at = recorder.record(tracking_numbers[: args.burst])
        burst_ids = [c for c in recorder.committed if c not in before]
        burst_missing = wait_all(endpoint, burst_ids, 30)
        burst = percentiles(latencies_ms(endpoint, recorder, [c for c in burst_ids if c not in burst_missing]))
        all_sent_in = (
            max([endpoint.arrived[c] for c in burst_ids if c not in burst_missing] or [time.time()]) - committed_at
        )

        print(
            f"\nnotification latency, event committed → webhook transport called "
            f"({args.workers} worker(s), {args.pool} pool, concurrency {args.concurrency})"
        )
        print(row("baseline", baseline) + f"   ({len(baseline_ids)} events in-process, no queue)")
        print(row("steady", steady, baseline))
        print(
            f"            {len(steady_ids)} events at {achieved:.0f}/s achieved (asked {args.rate:.0f}/s, "
            f"{late} recorded >50 ms late); {len(steady_ids) / steady_span:.0f} sent/s; "
            f"{len(missing)} not sent; target p95 < 100 ms: {'met' if steady['p95'] < 100 else 'NOT met'}"
        )
        print(row("burst", burst, baseline))
        print(
            f"            {len(burst_ids)} events in one transaction, all sent {all_sent_in:.2f} s after commit "
            f"({len(burst_ids) / all_sent_in:.0f}/s); {len(burst_missing)} not sent; "
            f"target all within 2 s: {'met' if all_sent_in < 2 and not burst_missing else 'NOT met'}"
        )
        print(f"  steady/baseline p50 ratio: {steady['p50'] / baseline['p50']:.1f}")
        print(
            f"  webhooks received {endpoint.requests} for {len(endpoint.arrived)} status changes: "
            f"{endpoint.requests - len(endpoint.arrived)} sent twice"
        )
        before_stop = children_cpu()
        for worker in workers:
            stop_worker(worker)
        workers = []
        handled = len(warm_ids) + len(steady_ids) + len(burst_ids)
        print(
            f"  CPU (user+sys) per event: worker, all its processes, {(children_cpu() - before_stop) / handled:.1f} ms "
            f"over {handled}; recording processes {recorders_cpu / len(steady_ids):.1f} ms over the steady run's "
            f"{len(steady_ids)}"
        )
        print(f"  the machine load average was {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        for worker in workers:
            stop_worker(worker)
        if endpoint is not None:
            endpoint.stop()
        celery_app.control.purge()
        connection.close()
        connection.creation.destroy_test_db(database_name, verbosity=0)


if __name__ == "__main__":
    main()
