"""The ground truth of bench/alerts.py: for each (parcel, kind), the spans of
replayed time in which DESIGN.md's rule says an alert should be open, and
the moment each span starts (the rule's moment).

Worked out from the simulated world's own timeline (what was sent, and
when), independently of shipments.alert_rules: a second reading of the
rules' table, so that the benchmark checks the portal's code against the
design rather than against itself. Only the thresholds (a brand's numbers)
are shared. missed_scan's spans come from the simulator's intent
(bench/alert_world.py), not from the pings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from bench.alert_world import World
from shipments.alert_rules import Thresholds, distance_m

TERMINAL = {"delivered", "returned_to_sender", "cancelled"}
EXCEPTIONS = {"exception", "returned_to_sender"}
RULE_KINDS = ("stuck", "late", "missed_scan", "delivered_away", "failed_no_retry", "carrier_exception")
# An alert opened this long before the rule's moment still counts as that
# one (the database keeps microseconds; the simulator's clock has them).
EARLY = timedelta(seconds=1)


@dataclass(frozen=True)
class Episode:
    kind: str
    number: str
    start: datetime
    end: datetime
    case: str


@dataclass
class Facts:
    status: str = "pending"
    last: datetime | None = None
    window_end: datetime | None = None
    eta: datetime | None = None
    delivered_at: tuple[float, float] | None = None


def _fold(events) -> Facts:
    facts = Facts()
    for event in sorted(events, key=lambda e: (e.occurred_at, e.external_id)):
        if facts.status not in TERMINAL:
            facts.status = event.status
        if event.status == "delivered" and event.lat is not None and facts.delivered_at is None:
            facts.delivered_at = (event.lat, event.lng)
    facts.last = max((e.occurred_at for e in events), default=None)
    return facts


def _true_from(kind: str, f: Facts, since: datetime, dest, limits: Thresholds) -> datetime | None:
    """From when in a span that starts at ``since`` (and whose facts are
    ``f``) the rule holds; None if it does not. Strict comparisons ("longer
    than") hold from just after the moment; the moment is returned."""
    moment = None
    if kind == "stuck" and f.status in limits.stuck_after and f.last is not None:
        moment = f.last + limits.stuck_after[f.status]
    elif kind == "late" and f.window_end is not None and f.status not in TERMINAL:
        moment = since if f.eta is not None and f.eta > f.window_end else f.window_end
    elif kind == "failed_no_retry" and f.status == "failed_attempt" and f.last is not None:
        if not (f.window_end is not None and f.window_end > f.last):
            moment = f.last + limits.failed_no_retry_after
    elif kind == "delivered_away" and f.status == "delivered" and f.delivered_at is not None:
        if distance_m(*f.delivered_at, *dest) > limits.delivered_away_m:
            moment = since
    elif kind == "carrier_exception" and f.status in EXCEPTIONS:
        moment = since
    return moment


def episodes(world: World, limits: Thresholds) -> list[Episode]:
    by_parcel: dict[str, list] = defaultdict(list)
    for at, _, what, payload in world.timeline:
        if what == "create":
            by_parcel[payload.number].append((at, "create", payload))
        elif what == "events":
            for event in payload:
                by_parcel[event.number].append((at, "event", event))
        elif what == "edit":
            by_parcel[payload[0]].append((at, "edit", payload[1]))
    found: list[Episode] = []
    for number, changes in by_parcel.items():
        found += _parcel_episodes(number, changes, world, limits)
    for missed in world.missed_scans:
        if missed.resolved_at is None or missed.resolved_at > missed.moment:
            found.append(
                Episode(
                    "missed_scan",
                    number=missed.number,
                    start=missed.moment,
                    end=missed.resolved_at or world.ends_at,
                    case=missed.case,
                )
            )
    cutoff = world.ends_at - timedelta(minutes=1)
    return [e for e in found if e.start < cutoff]


def _parcel_episodes(number: str, changes, world: World, limits: Thresholds) -> list[Episode]:
    parcel = world.parcels[number]
    dest = (parcel.lat, parcel.lng)
    events, window_end, eta = [], None, None
    open_since: dict[str, datetime] = {}
    found = []
    for index, (at, what, payload) in enumerate(changes):
        if what == "create":
            window_end, eta = payload.window_end, payload.eta
        elif what == "event":
            events.append(payload)
        else:
            window_end = payload.get("promised_window_end", window_end)
            eta = payload.get("eta", eta)
        if index + 1 < len(changes) and changes[index + 1][0] == at:
            continue  # several changes at one moment: judge after the last
        until = changes[index + 1][0] if index + 1 < len(changes) else world.ends_at
        facts = _fold(events)
        facts.window_end, facts.eta = window_end, eta
        for kind in RULE_KINDS:
            if kind == "missed_scan":
                continue
            start = _true_from(kind, facts, at, dest, limits)
            holds = start is not None and start < until
            if kind in open_since and not (holds and start <= at):
                if kind == "delivered_away":
                    continue  # staff close it, never a rule
                found.append(Episode(kind, number, open_since.pop(kind), at, parcel.case))
            if holds and kind not in open_since:
                open_since[kind] = max(start, at)
    found += [Episode(kind, number, since, world.ends_at, parcel.case) for kind, since in open_since.items()]
    return found
