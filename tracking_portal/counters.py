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
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping

from redis import RedisError

from .redis import shared_client

LIVE_KEY = "counters:live"
BATCH_PREFIX = "counters:batch:"

_local = Counter()
_local_lock = threading.Lock()


def bump(field: str, amount: int = 1) -> None:
    """Add to one counter; a Redis that is away loses this bump rather than
    slowing or failing the request that made it."""
    client = shared_client()
    if client is None:
        with _local_lock:
            _local[field] += amount
        return
    with contextlib.suppress(RedisError):
        client.hincrby(LIVE_KEY, field, amount)


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
