"""A process-local copy of hot cached pages, so that a warm page costs no
Redis round trip at all (pages/fast.py).

An entry is a page as the Redis page cache (pages.cache) holds it, under the
same key, and is only as good as this process's knowledge that the Redis
entry is unchanged. That knowledge comes from the hub's pattern
subscription (pages.live): every change that makes a stored page stale bumps
the page's epoch and publishes on the page's channel in the same pipeline
(pages.live.hub.publish), so the subscription hears of it, and the hub drops
the token's entries here. Each web process has its own subscription and its
own copy, so each drops its own.

Hence the rules:

- An entry is kept and served only while the subscription is established;
  when it is lost (or before it first is), everything is dropped, since a
  message missed meanwhile would leave a stale page here.
- It is filled from the Redis read with no ``await`` in between, on the
  event loop that also runs the subscription: a message published after
  that read is handled only after the entry is in, and so drops it.
- It lives no longer than the Redis entry would: the page's own expiry
  (the link's, the promise's, the driver's position) and the time Redis
  has left on the key.
- Bounded by count and by bytes; the least recently served goes first.

Only the event loop's thread touches it, so it takes no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# A tracking page is 20-40 KB: a few thousand hot pages in a few tens of MB.
MAX_ENTRIES = 4000
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    # What the fast path made of the stored page (pages.fast.Ready).
    page: Any
    # The stored page's bytes, what the bound counts.
    size: int
    # A Unix time; past it the entry is as good as gone.
    valid_until: float


class LocalCopy:
    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[str, Entry]] = OrderedDict()
        self._keys_of: dict[str, set[str]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def holds(self, token: str) -> bool:
        """Whether any page of this token is kept (expired or not)."""
        return token in self._keys_of

    def get(self, key: str, now: float) -> Entry | None:
        held = self._entries.get(key)
        if held is None:
            return None
        _token, entry = held
        if now >= entry.valid_until:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, token: str, key: str, entry: Entry) -> None:
        if entry.size > self.max_bytes:
            return
        if key in self._entries:
            self._remove(key)
        self._entries[key] = (token, entry)
        self._keys_of.setdefault(token, set()).add(key)
        self.bytes += entry.size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))

    def drop(self, token: str) -> None:
        """Every entry of this token (each language and frame)."""
        for key in self._keys_of.pop(token, ()):
            _token, entry = self._entries.pop(key)
            self.bytes -= entry.size

    def clear(self) -> None:
        self._entries.clear()
        self._keys_of.clear()
        self.bytes = 0

    def _remove(self, key: str) -> None:
        token, entry = self._entries.pop(key)
        self.bytes -= entry.size
        keys = self._keys_of[token]
        keys.discard(key)
        if not keys:
            del self._keys_of[token]


def valid_until(expires_at: float, redis_ttl_ms: int, now: float) -> float:
    """The earlier of the page's own expiry (0: none) and the Redis key's
    end (PTTL, in milliseconds; below zero: no end known, so none kept)."""
    if redis_ttl_ms <= 0:
        return now
    until = now + redis_ttl_ms / 1000
    return min(until, expires_at) if expires_at else until
