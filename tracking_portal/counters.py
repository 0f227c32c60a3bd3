"""Counters that a request bumps without a database write, and that a
periodic job takes away exactly once (the tracking page's views and its
support-link clicks, folded into analytics).

With Redis they are fields of one hash, bumped with HINCRBY. Taking them
is a two-step hand-over that loses nothing and counts nothing twice:

1. ``RENAME`` moves the live hash to a batch key named with a fresh id
   (atomic: a bump lands either before, in the batch, or after, in a new
   live hash);
2. the taker applies the batch in its own database transaction together
   with a row naming the batch id, and only then deletes the batch key.

A taker that dies between the two leaves the batch key behind; the next
run finds it and either applies it (its id is not in the database) or just
deletes it (it is). Without Redis the counters live in this process.

A request only adds to this process's buffer; a thread sends the buffer to
Redis in one pipeline every FLUSH_SECONDS, so the page's path has no
Redis round trip of its own (bench/analytics.py measured one HINCRBY per
request at 0.72 of the warm page's rate on a loaded machine). A process
that dies loses at most that second's counts.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping

from redis import RedisError

from .redis import shared_client

LIVE_KEY = "counters:live"
BATCH_PREFIX = "counters:batch:"
FLUSH_SECONDS = 1.0
# Past this many different counters waiting (Redis away for long), new
# ones are dropped rather than growing the process without bound.
MAX_WAITING = 100_000

_local = Counter()
_local_lock = threading.Lock()
_flusher: threading.Thread | None = None


def bump(field: str, amount: int = 1) -> None:
    """Add to one counter, in this process; with Redis, the flusher thread
    sends it on within FLUSH_SECONDS."""
    with _local_lock:
        if field in _local or len(_local) < MAX_WAITING:
            _local[field] += amount
    if _flusher is None and shared_client() is not None:
        _start_flusher()


def _start_flusher() -> None:
    global _flusher
    with _local_lock:
        if _flusher is not None:
            return
        _flusher = threading.Thread(target=_flush_forever, name="counters-flush", daemon=True)
        _flusher.start()


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        with contextlib.suppress(Exception):
            flush()


def flush() -> None:
    """Send this process's waiting counts to Redis (HINCRBY, one pipeline);
    kept for the next flush when Redis is away."""
    client = shared_client()
    if client is None:
        return
    with _local_lock:
        waiting = dict(_local)
        _local.clear()
    if not waiting:
        return
    try:
        pipeline = client.pipeline(transaction=False)
        for field, amount in waiting.items():
            pipeline.hincrby(LIVE_KEY, field, amount)
        pipeline.execute()
    except RedisError:
        with _local_lock:
            _local.update(waiting)
        raise


def take(apply: Callable[[str, Mapping[str, int]], bool]) -> int:
    """Hand every counted value to ``apply(batch_id, counts)`` once.

    ``apply`` writes the counts and records ``batch_id`` in one transaction,
    and returns False (writing nothing) when that id is already recorded.
    Returns how many batches were handed over."""
    client = shared_client()
    if client is None:
        with _local_lock:
            counts = dict(_local)
            _local.clear()
        if not counts:
            return 0
        try:
            apply(uuid.uuid4().hex, counts)
        except Exception:
            # Not written: back into the counters for the next run.
            with _local_lock:
                _local.update(counts)
            raise
        return 1
    flush()
    # Batches a taker left behind first, then the live hash.
    batches = [key.decode() for key in client.scan_iter(match=BATCH_PREFIX + "*", count=100)]
    fresh = BATCH_PREFIX + uuid.uuid4().hex
    try:
        client.rename(LIVE_KEY, fresh)
        batches.append(fresh)
    except RedisError as error:
        if "no such key" not in str(error).lower():
            raise
    for key in batches:
        raw = client.hgetall(key)
        counts = {field.decode(): int(value) for field, value in raw.items()}
        if counts:
            apply(key.removeprefix(BATCH_PREFIX), counts)
        client.delete(key)
    return len(batches)


def forget_local() -> None:
    """Drop the in-process counters (tests)."""
    with _local_lock:
        _local.clear()
