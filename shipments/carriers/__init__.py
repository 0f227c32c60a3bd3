"""Carrier webhooks: each source verifies its own signature scheme over the
raw body, then maps its vocabulary onto ours.

An adapter is a module with ``verify(brand, headers, body)``, which raises
SignatureInvalid, and (for carriers with their own format) ``events(document)``,
which returns (tracking number, NewEvent) pairs or raises PayloadInvalid.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from types import ModuleType


class SignatureInvalid(Exception):
    """The request cannot be shown to come from the source; nothing of the
    body is read."""


class PayloadInvalid(ValueError):
    """The body is signed but is not what the source documents."""

    def __init__(self, message: str, *, pointer: str = "#"):
        super().__init__(message)
        self.pointer = pointer


def adapter(source: str) -> ModuleType | None:
    from . import aftership, easypost, generic

    return {"generic": generic, "easypost": easypost, "aftership": aftership}.get(source)


SOURCES = ("generic", "easypost", "aftership")


def parse_time(value, pointer: str) -> datetime:
    """A carrier's ISO 8601 time; a naive one is kept naive so that the
    event is answered as that item's error rather than guessed at."""
    if not isinstance(value, str):
        raise PayloadInvalid("Expected an ISO 8601 date and time.", pointer=pointer)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise PayloadInvalid(f"Not an ISO 8601 date and time: {value[:40]!r}.", pointer=pointer) from None


def derived_id(prefix: str, *parts) -> str:
    """An external id for a carrier scan that has none of its own, from what
    identifies it, so that the same scan sent again is a duplicate."""
    digest = hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()[:32]
    return f"{prefix}:{digest}"


def text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""
