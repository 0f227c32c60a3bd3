"""Which days' delivery routes may be today's."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def days_that_may_be_today() -> list[dt.date]:
    """The dates whose routes may be running now: yesterday, today and
    tomorrow in UTC. A route is dated in its driver's local day, and a day
    either side of UTC's covers every time zone, so a route is never missed
    whatever the recipient's or the brand's zone."""
    today = timezone.now().astimezone(dt.UTC).date()
    return [today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)]
