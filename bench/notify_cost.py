"""What a status change's messages cost the worker: CPU and queries per
change, planning and sending, for batches as the API's batches arrive.

    .venv/bin/python bench/notify_cost.py [--batch 100] [--rounds 3]

The rush's brand (bench/rush_setup.py): an SMS, an email (the console
backends, as in bench/rush.py, their output thrown away) and a webhook to a
receiver on loopback for every parcel out for delivery. Each round records
a batch of --batch changes through the API's writer (services.
record_brand_events; its after-commit planning held back) and plans and
sends them as the worker's task does (planning.plan_batch, then
sending.deliver_planned, its emails left for later and sent after by
sending.deliver_together, as notifications.tasks does), in this process; then
the same number of changes one at a time (plan_batch of one id each): the
baseline, in the same run. The first round warms templates and imports and
is not counted. Printed: CPU ms and queries per change (planning, sending
at once, the emails sent later), and the batch's over the one-at-a-time's.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rush_setup import make_data, set_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_notify_cost")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    receiver, url, _arrivals = set_up(args.database_url, args.redis_url)
    per_round = 2 * args.batch
    _tokens, numbers, _refs, _key = make_data(per_round * (args.rounds + 1), 1, url)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications import planning, sending, tasks
    from shipments import services
    from shipments.models import Brand, StatusChange
    from shipments.services import NewEvent

    brand = Brand.objects.get(slug="rush")

    def record(chunk: list[str]) -> list[int]:
        at = dt.datetime.now(dt.UTC)
        items = [
            (n, NewEvent(status="out_for_delivery", occurred_at=at, source="api", external_id="van")) for n in chunk
        ]
        # The worker's part is measured here, not queued for one.
        with mock.patch("notifications.tasks.plan_soon"), mock.patch("shipments.eta.schedule"):
            services.record_brand_events(brand=brand, items=items)
        return list(
            StatusChange.objects.filter(shipment__tracking_number__in=chunk, processed_at__isnull=True).values_list(
                "pk", flat=True
            )
        )

    def work(batches: list[list[int]]) -> tuple[float, float, float, int, int]:
        """CPU of planning, of sending at once, of the emails sent later,
        queries and messages sent."""
        plan_cpu = send_cpu = later_cpu = 0.0
        queries = sent = 0
        with CaptureQueriesContext(connection) as captured:
            for ids in batches:
                began = time.process_time()
                plan = planning.plan_batch(ids, up_to=len(ids), later=tasks.LATER)
                planned = time.process_time()
                sent += sum(1 for _ in sending.deliver_planned(plan))
                at_once = time.process_time()
                sent += sum(1 for _ in sending.deliver_together(plan.later))
                plan_cpu += planned - began
                send_cpu += at_once - planned
                later_cpu += time.process_time() - at_once
            queries = len(captured)
        return plan_cpu, send_cpu, later_cpu, queries, sent

    rows = []
    for n in range(args.rounds + 1):
        chunk = numbers[n * per_round : (n + 1) * per_round]
        together, alone = record(chunk[: args.batch]), record(chunk[args.batch :])
        with contextlib.redirect_stdout(io.StringIO()):  # the console backends' output
            batch = work([together])
            single = work([[pk] for pk in alone])
        if n:
            rows.append((batch, single))
    receiver.terminate()

    def per_change(figures, count) -> tuple[float, ...]:
        plan_cpu, send_cpu, later_cpu, queries, sent = figures
        return plan_cpu * 1000 / count, send_cpu * 1000 / count, later_cpu * 1000 / count, queries / count, sent / count

    print(f"notification cost: {args.rounds} rounds of {args.batch} changes (SMS, email, webhook each)")
    print("  per change           planning ms  at once ms  later ms   queries   messages")
    medians = {}
    for name, index in (("a batch", 0), ("one at a time", 1)):
        figures = [per_change(row[index], args.batch) for row in rows]
        medians[name] = [statistics.median(column) for column in zip(*figures, strict=True)]
        plan_ms, send_ms, later_ms, queries, sent = medians[name]
        print(f"  {name:<20}{plan_ms:>12.2f}{send_ms:>12.2f}{later_ms:>10.2f}{queries:>10.1f}{sent:>11.1f}")
    batch, single = medians["a batch"], medians["one at a time"]
    print(
        f"  a batch / one at a time: planning {batch[0] / single[0]:.2f}, at once {batch[1] / single[1]:.2f}, "
        f"later {batch[2] / single[2]:.2f}, queries {batch[3] / single[3]:.2f}, "
        f"all CPU {sum(batch[:3]) / sum(single[:3]):.2f}"
    )
    print(
        f"  a batch: planning and sending at once {batch[0] + batch[1]:.2f} ms of {sum(batch[:3]):.2f} "
        f"({(batch[0] + batch[1]) / sum(batch[:3]):.2f}): what the default queue asks of the worker per change"
    )


if __name__ == "__main__":
    main()
