"""Live updates: many open tracking-page streams on one server process.

    .venv/bin/python bench/live.py [--streams 1000 5000] [--rounds 3]

One uvicorn process serves the portal (PostgreSQL, Redis). For each level, a
client process opens that many server-sent-event streams (/t/<token>/events/,
one shipment each), the server's memory is read before and after, then one
change per shipment is published the way the portal does after a commit
(Redis PUBLISH, all at once) and the client notes when each stream delivers
it. Printed: delivered/opened, delivery p50/p95/p99/max, and server memory
per open stream. Targets on the 2-core machine: p95 < 50 ms at 1,000 streams
and < 300 ms at 5,000, < 40 KB per stream.

Needs Redis (the cross-process bus). Makes its own database (--database-url,
dropped and created) and raises its open-files limit.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup

PORT = 8445
OPENING_AT_ONCE = 200
DELIVERY_TIMEOUT = 30.0


class StreamClient(asyncio.Protocol):
    """One stream, read in data_received: the client must cost less per
    message than the server, or it measures itself."""

    def __init__(self, request: bytes, opened: asyncio.Future, received: list, index: int):
        self.request, self.opened, self.received, self.index = request, opened, received, index
        self.seen = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.seen += data
            if b": open" in self.seen:
                if b" 200 " not in self.seen.split(b"\r\n", 1)[0]:
                    self.opened.set_exception(RuntimeError(self.seen[:200].decode(errors="replace")))
                else:
                    self.opened.set_result(None)
                self.seen = b""
        elif self.received[self.index] is None:
            self.seen = self.seen[-32:] + data
            if b"event: changed" in self.seen:
                self.received[self.index] = time.monotonic()

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before the stream opened"))


def client(port: int, tokens: list[str], pipe) -> None:
    """Runs in its own process: open every stream, say so, then note when
    each delivers its change."""
    import uvloop

    async def main():
        loop = asyncio.get_running_loop()
        received: list[float | None] = [None] * len(tokens)
        gate = asyncio.Semaphore(OPENING_AT_ONCE)
        transports = []

        async def open_stream(index: int, token: str) -> None:
            async with gate:
                opened = loop.create_future()
                request = (
                    f"GET /t/{token}/events/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
                ).encode()
                transport, _ = await loop.create_connection(
                    lambda: StreamClient(request, opened, received, index), "127.0.0.1", port
                )
                transports.append(transport)
                await opened

        await asyncio.gather(*(open_stream(i, token) for i, token in enumerate(tokens)))
        pipe.send(("open", len(transports)))
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while None in received and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        pipe.send(("received", received))
        pipe.recv()  # hold the streams open until the server's memory was read
        for transport in transports:
            transport.close()
        await asyncio.sleep(0.5)

    uvloop.run(main())


def make_shipments(count: int) -> list[str]:
    from shipments import services
    from shipments.models import Brand

    brand = Brand.objects.create(name="Bench Parcels", slug="bench-live")
    return [
        services.create_shipment(brand=brand, tracking_number=f"BL{n:07d}", destination_city="London")[0].public_token
        for n in range(count)
    ]


def run_level(server: _setup.Server, tokens: list[str]) -> dict:
    from pages import cache as page_cache
    from pages.live import hub, subscriber

    redis = page_cache.shared_redis()
    prefix = subscriber.channel_prefix()
    before_kb = server.rss_kb()
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=client, args=(server.port, tokens, child))
    process.start()
    kind, opened = parent.recv()
    assert kind == "open"
    time.sleep(1.0)  # let the server settle before reading its memory
    open_kb = server.rss_kb()

    pipe = redis.pipeline(transaction=False)
    for token in tokens:
        pipe.publish(prefix + token, hub.CHANGED)
    cpu_before = server.cpu_seconds()
    published_at = time.monotonic()
    pipe.execute()
    kind, received = parent.recv()
    assert kind == "received"
    server_cpu_ms = (server.cpu_seconds() - cpu_before) * 1000
    parent.send("close")
    process.join(30)

    latencies = sorted((at - published_at) * 1000 for at in received if at is not None)
    quantile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        "streams": len(tokens),
        "opened": opened,
        "delivered": len(latencies),
        "p50": statistics.median(latencies),
        "p95": quantile(0.95),
        "p99": quantile(0.99),
        "max": latencies[-1],
        "kb_per_stream": (open_kb - before_kb) / len(tokens),
        # The server's own CPU for the whole fan-out: what it costs, apart
        # from the waiting that other work on the machine adds.
        "server_cpu_ms": server_cpu_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--rounds", type=int, default=3, help="runs per level; medians are printed")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_live")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()

    limit = _setup.raise_open_files_limit(2 * max(args.streams) + 1000)
    _setup.recreate_database(args.database_url)
    _setup.configure(args.database_url, args.redis_url)
    _setup.migrate()
    print(f"open files limit {limit}; making {max(args.streams)} shipments…", flush=True)
    tokens = make_shipments(max(args.streams))

    results = []
    for level in args.streams:
        runs = []
        for round_number in range(1, args.rounds + 1):
            # A fresh server each time: memory a process has once grown to
            # stays with it, so only a first opening measures it.
            server = _setup.Server(PORT, args.database_url, args.redis_url)
            try:
                run = run_level(server, tokens[:level])
            finally:
                server.stop()
            runs.append(run)
            print(
                f"{level} streams, round {round_number}: delivered {run['delivered']}/{run['opened']}, "
                f"p50 {run['p50']:.0f} ms, p95 {run['p95']:.0f} ms, {run['kb_per_stream']:.1f} KB/stream, "
                f"server CPU {run['server_cpu_ms']:.0f} ms",
                flush=True,
            )
        results.append(
            {
                key: min(r[key] for r in runs)
                if key in ("delivered", "opened")
                else statistics.median(r[key] for r in runs)
                for key in runs[0]
            }
        )

    print()
    print(f"one uvicorn process, medians of {args.rounds} rounds (delivered: the worst round)")
    print(
        f"{'streams':>8}{'delivered':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'KB/stream':>11}"
        f"{'server CPU ms':>15}"
    )
    for r in results:
        print(
            f"{r['streams']:>8}{r['delivered']:>11}{r['p50']:>9.0f}{r['p95']:>9.0f}{r['p99']:>9.0f}"
            f"{r['max']:>9.0f}{r['kb_per_stream']:>11.1f}{r['server_cpu_ms']:>15.0f}"
        )
    print("targets: p95 < 50 ms at 1,000 streams, < 300 ms at 5,000; < 40 KB per stream")


if __name__ == "__main__":
    main()
