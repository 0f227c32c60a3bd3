"""The canonical statuses and the rule that turns a set of events into one.

Pure: no database, no Django at all (the labels people read are in
shipments/labels.py). ``record_event`` enforces these rules and
tests exercise them directly.

The rule: events can arrive late, twice and out of order, so a shipment's
status is a function of the *set* of its events. Take them in ``event_sort_key``
order; each sets the status until a terminal status is reached, after which
later events stay in the timeline but change nothing. Only a staff correction
(an audited event) leaves a terminal status.

Two different terminal events (delivered and returned to sender, say) are a
conflict no order can hide: the earlier by occurred_at wins, so a late report
of an earlier one replaces one terminal status with another. It never opens a
closed shipment again.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Protocol


class Status(enum.StrEnum):
    PENDING = "pending"
    INFO_RECEIVED = "info_received"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    FAILED_ATTEMPT = "failed_attempt"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    EXCEPTION = "exception"
    RETURNED_TO_SENDER = "returned_to_sender"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


class Substatus(enum.StrEnum):
    NONE = ""
    DELAYED = "delayed"
    WEATHER_DELAY = "weather_delay"
    ADDRESS_ISSUE = "address_issue"
    RECIPIENT_UNAVAILABLE = "recipient_unavailable"
    REFUSED = "refused"
    DAMAGED = "damaged"
    LOST = "lost"
    CUSTOMS_HOLD = "customs_hold"
    ACCESS_ISSUE = "access_issue"
    RESCHEDULED = "rescheduled"


TERMINAL = frozenset({Status.DELIVERED, Status.RETURNED_TO_SENDER, Status.CANCELLED})

# The driver's position is public only while the parcel is on the van.
SHOWS_DRIVER = frozenset({Status.OUT_FOR_DELIVERY})

# A stop ahead counts as done once its parcel has had its delivery attempt,
# whether or not the driver app marked the stop completed.
STOP_DONE = (
    Status.DELIVERED,
    Status.FAILED_ATTEMPT,
    Status.AVAILABLE_FOR_PICKUP,
    Status.RETURNED_TO_SENDER,
    Status.CANCELLED,
)

# Customers may tell the driver something until the parcel is on the van,
# and again after a failed attempt, before the next one.
INSTRUCTIONS_OPEN = frozenset(
    {Status.PENDING, Status.INFO_RECEIVED, Status.IN_TRANSIT, Status.EXCEPTION, Status.FAILED_ATTEMPT}
)


def offers_delivery_choice(status: Status, substatus: str) -> bool:
    """After a failed attempt the customer chooses what happens next (a new
    day, a safe place, a neighbour, a pickup point), unless they refused
    the parcel: then it goes back, and there is nothing to choose."""
    return status == Status.FAILED_ATTEMPT and substatus != Substatus.REFUSED


def takes_address_note(status: Status, substatus: str) -> bool:
    """Before delivery, while the parcel is on its way or the driver could
    not find the address, the customer may correct or complete the
    address for support (never straight into the address itself)."""
    if status in (Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY):
        return True
    return status in (Status.EXCEPTION, Status.FAILED_ATTEMPT) and substatus == Substatus.ADDRESS_ISSUE


# Journeys that left the happy path: cancelled, on the way back, or stuck.
OFF_TRACK = frozenset({Status.CANCELLED, Status.RETURNED_TO_SENDER, Status.EXCEPTION})


class EventLike(Protocol):
    occurred_at: datetime
    source: str
    external_id: str
    status: str
    is_correction: bool


# The one order in which events are applied and shown, oldest first, by
# field name: event_sort_key, the model's ordering, the timeline (newest
# first: the same order reversed) and the API all derive from it. It
# depends only on the event itself, never on when it arrived (not its id),
# so every arrival order of the same set of events yields the same timeline.
EVENT_ORDER = ("occurred_at", "source", "external_id")
# Newest first, as the timeline shows them: EVENT_ORDER reversed, for
# order_by().
NEWEST_FIRST = tuple(f"-{name}" for name in EVENT_ORDER)
_event_key = attrgetter(*EVENT_ORDER)


def event_sort_key(event: EventLike) -> tuple[datetime, str, str]:
    """An event's place in EVENT_ORDER."""
    return _event_key(event)


def applies(current: Status, event: EventLike) -> bool:
    """Whether an event, taken in order, sets the status: after a terminal
    status only a staff correction does."""
    return current not in TERMINAL or event.is_correction


@dataclass(frozen=True)
class Outcome:
    status: Status
    deciding_event: EventLike | None


def fold(events: Iterable[EventLike], initial: Status = Status.PENDING) -> Outcome:
    """The status that a set of events leads to, and the event that set it."""
    status, deciding = initial, None
    for event in sorted(events, key=event_sort_key):
        if applies(status, event):
            status, deciding = Status(event.status), event
    return Outcome(status, deciding)
