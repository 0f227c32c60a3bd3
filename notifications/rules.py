"""Pure rules for sending: quiet hours, retry back-off and SMS encoding.

No database and no Django models, so the tests exercise them directly.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shipments.statuses import Status

DEFAULT_NOTIFY_STATUSES = (
    Status.OUT_FOR_DELIVERY,
    Status.FAILED_ATTEMPT,
    Status.DELIVERED,
    Status.EXCEPTION,
)

# No SMS between 21:00 and 08:00 in the recipient's time zone, except news
# that loses its point by the morning.
QUIET_START = time(21, 0)
QUIET_END = time(8, 0)
SENT_DURING_QUIET_HOURS = frozenset({Status.OUT_FOR_DELIVERY, Status.DELIVERED})


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def in_quiet_hours(moment: datetime, tz_name: str) -> bool:
    local = moment.astimezone(zone(tz_name)).time()
    return local >= QUIET_START or local < QUIET_END


def earliest_sms_time(now: datetime, *, tz_name: str, status: str) -> datetime:
    """When an SMS about ``status`` may go out: now, or 08:00 local after
    the quiet hours that ``now`` falls in.

    The wall-clock time is built in the recipient's zone and converted back,
    so a night that gains or loses an hour to DST still ends at 08:00 local.
    """
    if status in SENT_DURING_QUIET_HOURS or not in_quiet_hours(now, tz_name):
        return now
    tz = zone(tz_name)
    local = now.astimezone(tz)
    day = local.date() if local.time() < QUIET_END else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_END, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter: attempt n waits between half and all
    of base * 2**(n-1), capped, so that the retries of one outage spread out
    instead of arriving together."""

    base_seconds: float
    cap_seconds: float
    max_attempts: int | None = None
    give_up_after: timedelta | None = None

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(attempt - 1, 0))
        # Never less than a second, so a retry cannot spin.
        return max(1.0, (rng or random).uniform(ceiling / 2, ceiling))

    def gives_up(self, *, attempts: int, first_planned_at: datetime, now: datetime) -> bool:
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return self.give_up_after is not None and now - first_planned_at >= self.give_up_after


# SMS and email: a handful of tries over about an hour; after that the news
# is stale. Webhooks: the brand's systems are retried for 24 hours, as
# Standard Webhooks senders do.
SMS_EMAIL_RETRIES = RetryPolicy(base_seconds=30, cap_seconds=1800, max_attempts=6)
WEBHOOK_RETRIES = RetryPolicy(base_seconds=30, cap_seconds=4 * 3600, give_up_after=timedelta(hours=24))


# GSM 03.38: the basic set (one septet each) and the extension set (two).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"
_GSM7 = frozenset(GSM7_BASIC) | frozenset(GSM7_EXTENSION)

# Typographic characters a template or a carrier's text brings in, and the
# GSM-7 characters that read the same. One stray curly quote would otherwise
# switch the whole message to UCS-2 and cut a segment from 160 to 70.
_GSM7_LOOKALIKES = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        "`": "'",
        "´": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "″": '"',
        "«": '"',
        "»": '"',
        "‐": "-",
        "‑": "-",
        "‒": "-",
        "–": "-",
        "—": "-",
        "―": "-",
        "−": "-",
        "…": "...",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u200b": "",
        "•": "*",
        "·": "-",
        "→": "->",
        "×": "x",
        "\t": " ",
    }
)


@dataclass(frozen=True)
class SmsText:
    text: str
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int


def prepare_sms(text: str) -> SmsText:
    """Replace look-alike characters so the text stays in GSM-7 where it
    can, and count the segments it will be billed as."""
    text = text.translate(_GSM7_LOOKALIKES).strip()
    if all(char in _GSM7 for char in text):
        septets = sum(2 if char in GSM7_EXTENSION else 1 for char in text)
        segments = 1 if septets <= 160 else math.ceil(septets / 153)
        return SmsText(text, "GSM-7", segments)
    units = len(text.encode("utf-16-le")) // 2
    segments = 1 if units <= 70 else math.ceil(units / 67)
    return SmsText(text, "UCS-2", segments)
