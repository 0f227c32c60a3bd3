"""The canonical statuses and the rule that turns a set of events into one.

Pure: no database, no Django models. ``record_event`` enforces these rules and
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
from typing import Protocol

from django.utils.translation import gettext_lazy as _


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
    def label(self) -> str:
        return STATUS_LABELS[self]

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

    @property
    def label(self) -> str:
        return SUBSTATUS_LABELS[self]


STATUS_LABELS = {
    Status.PENDING: _("Order received"),
    Status.INFO_RECEIVED: _("Label created"),
    Status.IN_TRANSIT: _("In transit"),
    Status.OUT_FOR_DELIVERY: _("Out for delivery"),
    Status.FAILED_ATTEMPT: _("Delivery attempted"),
    Status.AVAILABLE_FOR_PICKUP: _("Ready for pickup"),
    Status.EXCEPTION: _("Needs attention"),
    Status.RETURNED_TO_SENDER: _("Returned to sender"),
    Status.DELIVERED: _("Delivered"),
    Status.CANCELLED: _("Cancelled"),
}

SUBSTATUS_LABELS = {
    Substatus.NONE: "",
    Substatus.DELAYED: _("Delayed"),
    Substatus.WEATHER_DELAY: _("Delayed by weather"),
    Substatus.ADDRESS_ISSUE: _("Address problem"),
    Substatus.RECIPIENT_UNAVAILABLE: _("Nobody available to receive it"),
    Substatus.REFUSED: _("Refused by the recipient"),
    Substatus.DAMAGED: _("Damaged"),
    Substatus.LOST: _("Lost"),
    Substatus.CUSTOMS_HOLD: _("Held at customs"),
    Substatus.ACCESS_ISSUE: _("Could not access the address"),
    Substatus.RESCHEDULED: _("Rescheduled"),
}

TERMINAL = frozenset({Status.DELIVERED, Status.RETURNED_TO_SENDER, Status.CANCELLED})

# The steps of the progress bar a customer sees, and where each status sits
# on it. Statuses off the happy path sit at the step they interrupt.
PROGRESS_STEPS = (Status.INFO_RECEIVED, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.DELIVERED)
PROGRESS_POSITION = {
    Status.PENDING: 0,
    Status.INFO_RECEIVED: 1,
    Status.IN_TRANSIT: 2,
    Status.EXCEPTION: 2,
    Status.OUT_FOR_DELIVERY: 3,
    Status.FAILED_ATTEMPT: 3,
    Status.AVAILABLE_FOR_PICKUP: 3,
    Status.RETURNED_TO_SENDER: 2,
    Status.CANCELLED: 0,
    Status.DELIVERED: 4,
}

# The driver's position is public only while the parcel is on the van.
SHOWS_DRIVER = frozenset({Status.OUT_FOR_DELIVERY})

STATUS_CHOICES = [(s.value, STATUS_LABELS[s]) for s in Status]
SUBSTATUS_CHOICES = [(s.value, SUBSTATUS_LABELS[s] or "—") for s in Substatus]


class EventLike(Protocol):
    occurred_at: datetime
    source: str
    external_id: str
    status: str
    is_correction: bool


def event_sort_key(event: EventLike) -> tuple[datetime, str, str]:
    """The one order in which events are applied and shown.

    It depends only on the event itself, never on when it arrived, so every
    arrival order of the same set of events yields the same timeline.
    """
    return (event.occurred_at, event.source, event.external_id)


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
