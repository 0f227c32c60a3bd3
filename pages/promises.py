"""What the public pages say of when a parcel comes, and of what is being
done about it, so that they never promise what has already passed.

- A parcel still on its way is *running late* while a ``late`` alert is
  open or, without waiting for the alert to open, by the alert's own rule
  at this moment (shipments.alert_rules.is_late: the promised window has
  ended, or the ETA falls after it). A late parcel shows the new expected
  time where one is known, and the window it was promised only as such.
- An expected time or a window that has passed is never shown as still to
  come.
- While the parcel is on a van with the portal's own estimate, the page
  shows that window ("arriving between"), when it was worked out, and a
  note when the driver's position is old; the brand's promise otherwise.
- An open ``missed_scan`` alert says the portal is checking with the
  driver.

The page cache keeps a rendered page only until ``fresh_until``: the next
moment the clock alone changes what these words say.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from django.conf import settings

from shipments.alert_rules import AlertKind, Facts, is_late
from shipments.eta import expected_eta, has_computed, is_stale
from shipments.models import Shipment
from shipments.statuses import Status

# A parcel waiting to be collected is not coming to the door: no window, no
# expected time, never late (its page says where and until when instead).
NOT_COMING = frozenset({Status.AVAILABLE_FOR_PICKUP})


def is_running_late(shipment: Shipment, open_alerts: Collection[str], now: datetime) -> bool:
    """Running late: never once the journey has ended, whatever alert is
    still open."""
    if shipment.is_terminal:
        return False
    if AlertKind.LATE in open_alerts:
        return True
    facts = Facts(status=shipment.status, window_end=shipment.promised_window_end, eta=expected_eta(shipment))
    return is_late(facts, now)


def delivery_times(
    shipment: Shipment, open_alerts: Collection[str], times, now: datetime, *, position_at: datetime | None = None
) -> dict:
    """The page's words on when: ``late``, ``eta`` (a moment still to come),
    ``window_start`` / ``window_end`` (the window while it still holds),
    ``was_window_start`` / ``was_window_end`` (the window a late parcel was
    promised), ``checking`` and, while the parcel is on a van with the
    portal's own estimate (shipments.eta), ``arriving_start`` /
    ``arriving_end`` (that window), ``eta_updated`` (when it was worked
    out) and ``position_stale`` (the driver's last position, at
    ``position_at`` or else the one it was worked out from, is old).
    Moments as ``times`` (a presenters.LocalTimes) gives them."""
    none = {
        "eta": None,
        "window_start": None,
        "window_end": None,
        "was_window_start": None,
        "was_window_end": None,
        "arriving_start": None,
        "arriving_end": None,
        "eta_updated": None,
        "position_stale": False,
    }
    if shipment.is_terminal or shipment.status in NOT_COMING:
        return {**none, "late": False, "checking": False}
    if shipment.status == Status.FAILED_ATTEMPT:
        # The attempt is over: the window it was made in is not a promise
        # any more; only a new one, for after the attempt and still to
        # come, is (or the customer's new day, which the page says).
        start, end, attempt = shipment.promised_window_start, shipment.promised_window_end, shipment.status_changed_at
        if end is None or end <= now or (start is not None and attempt is not None and start <= attempt):
            return {**none, "late": False, "checking": False}
        return {
            **none,
            "late": False,
            "eta": times.moment(shipment.eta if shipment.eta is not None and shipment.eta > now else None),
            "window_start": times.moment(shipment.promised_window_start),
            "window_end": times.moment(shipment.promised_window_end),
            "checking": False,
        }
    late = is_running_late(shipment, open_alerts, now)
    checking = AlertKind.MISSED_SCAN in open_alerts
    start, end = times.moment(shipment.promised_window_start), times.moment(shipment.promised_window_end)
    if has_computed(shipment, now):
        computed = {
            "arriving_start": times.moment(max(shipment.computed_window_start, now)),
            "arriving_end": times.moment(shipment.computed_window_end),
            "eta_updated": times.moment(shipment.computed_at),
            "position_stale": is_stale(position_at or shipment.computed_from, now),
        }
        if late:
            return {
                **none,
                **computed,
                "late": True,
                "eta": times.moment(shipment.computed_eta if shipment.computed_eta > now else None),
                "was_window_start": start,
                "was_window_end": end,
                "checking": checking,
            }
        return {**none, **computed, "late": False, "checking": checking}
    eta = shipment.eta if shipment.eta is not None and shipment.eta > now else None
    return {
        **none,
        "late": late,
        "eta": times.moment(eta),
        **({"was_window_start": start, "was_window_end": end} if late else {"window_start": start, "window_end": end}),
        "checking": checking,
    }


def fresh_until(shipment: Shipment, now: datetime) -> datetime | None:
    """When the clock alone next changes what delivery_times says (an
    expected time or a window's end passing, the driver's position growing
    old); None if it never does."""
    if shipment.is_terminal:
        return None
    moments = [shipment.eta, shipment.promised_window_end]
    if has_computed(shipment, now):
        moments += [shipment.computed_eta, shipment.computed_window_start, shipment.computed_window_end]
        if shipment.computed_from is not None:
            moments.append(shipment.computed_from + timedelta(seconds=settings.ETA_STALE_POSITION_SECONDS))
    ahead = [moment for moment in moments if moment is not None and moment >= now]
    return min(ahead, default=None)
