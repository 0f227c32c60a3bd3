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


def client(port: int, tokens: list[str], pipe) -> None:
    """Runs in its own process: open every stream, say so, then note when
    each delivers its change."""
    import uvloop

    async def open_stream(token: str, gate: asyncio.Semaphore):
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET /t/{token}/events/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError(head.decode(errors="replace"))
            seen = b""
            while b": open" not in seen:
                seen += await reader.read(1024)
            return reader, writer

    async def wait_for_change(reader) -> float | None:
        seen = b""
        while b"event: changed" not in seen:
            chunk = await reader.read(4096)
            if not chunk:
                return None
            seen = seen[-64:] + chunk
        return time.monotonic()

    async def main():
        gate = asyncio.Semaphore(OPENING_AT_ONCE)
        streams = await asyncio.gather(*(open_stream(token, gate) for token in tokens))
        waits = [asyncio.ensure_future(wait_for_change(reader)) for reader, _ in streams]
        pipe.send(("open", len(streams)))
        done, _ = await asyncio.wait(waits, timeout=DELIVERY_TIMEOUT)
        received = [w.result() if w in done else None for w in waits]
        pipe.send(("received", received))
        pipe.recv()  # hold the streams open until the server's memory was read
        for _, writer in streams:
            writer.close()
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
    from shipments import live, page_cache

    redis = page_cache.shared_redis()
    prefix = live.channel_prefix()
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
        pipe.publish(prefix + token, live.CHANGED)
    published_at = time.monotonic()
    pipe.execute()
    kind, received = parent.recv()
    assert kind == "received"
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
                f"p50 {run['p50']:.0f} ms, p95 {run['p95']:.0f} ms, {run['kb_per_stream']:.1f} KB/stream",
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
    print(f"{'streams':>8}{'delivered':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'KB/stream':>11}")
    for r in results:
        print(
            f"{r['streams']:>8}{r['delivered']:>11}{r['p50']:>9.0f}{r['p95']:>9.0f}{r['p99']:>9.0f}"
            f"{r['max']:>9.0f}{r['kb_per_stream']:>11.1f}"
        )
    print("targets: p95 < 50 ms at 1,000 streams, < 300 ms at 5,000; < 40 KB per stream")


if __name__ == "__main__":
    main()
