"""Where a freshly changed tracking page spends its time, in one thread.

    .venv/bin/python bench/page_profile.py [--renders 300] [--profile cumulative|tottime [--callers PATTERN]]

Makes the tracking page benchmark's data (shipments out for delivery with 30
events on a 100-stop route) in its own database, then requests /t/<token>/
through the middleware and the view with the page cache invalidated before
each request, so every request is a fresh render, as in the benchmark's
"just changed" walk. Prints milliseconds per render (wall clock, and CPU
time, which a busy machine disturbs less), and the time spent in queries;
--profile adds cProfile's top entries.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tracking_page import make_data, open_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=300)
    parser.add_argument("--shipments", type=int, default=100)
    parser.add_argument(
        "--profile", choices=["cumulative", "tottime"], help="print cProfile's top entries too, in this order"
    )
    parser.add_argument("--callers", metavar="PATTERN", help="with --profile: who calls the functions matching this")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_profile")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    args = parser.parse_args()

    open_database(args.database_url, args.redis_url)

    from django.core.handlers.base import BaseHandler
    from django.db import connection
    from django.test import RequestFactory

    from pages import cache as page_cache

    tokens = make_data(args.shipments)
    factory = RequestFactory(headers={"Accept-Language": "en"}, SERVER_NAME="127.0.0.1")
    # Through the middleware, as the server runs it.
    handler = BaseHandler()
    handler.load_middleware()

    def render(token: str) -> None:
        page_cache.invalidate([token])
        response = handler.get_response(factory.get(f"/t/{token}/"))
        assert response.status_code == 200, response.status_code

    for token in tokens[:20]:  # warm templates, translations and the pool
        render(token)

    query_seconds = []

    def timed_query(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            query_seconds.append(time.perf_counter() - began)

    durations = []
    cpu_began = time.process_time()
    profiler = cProfile.Profile() if args.profile else None
    with connection.execute_wrapper(timed_query):
        for n in range(args.renders):
            token = tokens[n % len(tokens)]
            began = time.perf_counter()
            if profiler:
                profiler.enable()
            render(token)
            if profiler:
                profiler.disable()
            durations.append(time.perf_counter() - began)

    cpu_ms = (time.process_time() - cpu_began) * 1000 / args.renders
    mean_ms = statistics.mean(durations) * 1000
    queries_ms = sum(query_seconds) * 1000 / args.renders
    print(f"{args.renders} fresh renders: mean {mean_ms:.2f} ms, median {statistics.median(durations) * 1000:.2f} ms")
    print(f"  CPU {cpu_ms:.2f} ms per render")
    print(f"  queries {queries_ms:.2f} ms ({len(query_seconds) / args.renders:.1f} per render)")
    print(f"  the rest (Redis, context, templates) {mean_ms - queries_ms:.2f} ms")
    if profiler:
        stats = pstats.Stats(profiler).sort_stats(args.profile)
        stats.print_stats(45)
        if args.callers:
            stats.print_callers(args.callers)


if __name__ == "__main__":
    main()
