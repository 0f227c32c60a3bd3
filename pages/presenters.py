"""What the public tracking page shows, read in a fixed number of queries.

Privacy is decided here: the recipient's first name and city at most, never
the street, postcode, phone or email; the driver's position only while the
parcel is out for delivery; the destination only as an area.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from html import escape

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from shipments.alert_rules import AlertKind
from shipments.branding import brand_context
from shipments.customer import has_open_report, open_report_entries
from shipments.dates import day_format
from shipments.labels import STATUS_LABELS, SUBSTATUS_LABELS, scan_description
from shipments.models import Shipment
from shipments.recipients import recipient_zone
from shipments.routes import days_that_may_be_today
from shipments.statuses import INSTRUCTIONS_OPEN, OFF_TRACK, SHOWS_DRIVER, STOP_DONE, Status, Substatus
from shipments.zone_names import zone_name

from .choice_presenters import choice_page_context, timeline_reports
from .promises import delivery_times
from .reads import PageRows, open_alert_kinds, page_rows, rating_of, shipment_with_brand

# Rounded to about 100 m: enough to show the area, not the door.
DESTINATION_DECIMALS = 3

STATUS_MESSAGES = {
    Status.PENDING: _("We have your order and will tell you as soon as it ships."),
    Status.INFO_RECEIVED: _("The sender has prepared your parcel and it is waiting to be collected."),
    Status.IN_TRANSIT: _("Your parcel is on its way to your local depot."),
    Status.OUT_FOR_DELIVERY: _("Your parcel is with the driver and arrives today."),
    Status.FAILED_ATTEMPT: _("We tried to deliver your parcel but could not. Tell us what suits you best."),
    Status.AVAILABLE_FOR_PICKUP: _("Your parcel is waiting for you to collect it."),
    Status.EXCEPTION: _("Something needs our attention. We are on it; the latest update is below."),
    Status.RETURNED_TO_SENDER: _(
        "Your parcel is going back to the sender. They can tell you about a new delivery or a refund."
    ),
    Status.DELIVERED: _("Your parcel has been delivered."),
    Status.CANCELLED: _("This delivery was cancelled."),
}

TONES = {
    Status.DELIVERED: "success",
    Status.OUT_FOR_DELIVERY: "active",
    Status.FAILED_ATTEMPT: "warning",
    Status.EXCEPTION: "warning",
    Status.AVAILABLE_FOR_PICKUP: "warning",
    Status.RETURNED_TO_SENDER: "muted",
    Status.CANCELLED: "muted",
}


def find_shipment(token: str) -> Shipment | None:
    return shipment_with_brand(token)


def shows_proof(shipment: Shipment) -> bool:
    """The page shows proof of delivery (and serves its images, through
    pages.media) only for a delivered parcel that has some."""
    return shipment.status_enum == Status.DELIVERED and bool(
        shipment.proof_received_by or shipment.proof_photo or shipment.proof_signature
    )


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
    Status.RETURNED_TO_SENDER: 3,
    Status.CANCELLED: 0,
    Status.DELIVERED: 4,
}


# A parcel waiting at a pickup point is not going out for delivery: its
# third step is the collection point.
PICKUP_STEPS = (Status.INFO_RECEIVED, Status.IN_TRANSIT, Status.AVAILABLE_FOR_PICKUP, Status.DELIVERED)
# A parcel going back will never be out for delivery nor delivered: its
# line ends at the way back.
RETURN_STEPS = (Status.INFO_RECEIVED, Status.IN_TRANSIT, Status.RETURNED_TO_SENDER)
STEPS = {Status.AVAILABLE_FOR_PICKUP: PICKUP_STEPS, Status.RETURNED_TO_SENDER: RETURN_STEPS}

# What the page says once it stops updating, which must agree with the
# status: a parcel on its way back has not finished a journey.
FINAL_NOTES = {
    Status.RETURNED_TO_SENDER: _("This page no longer follows the parcel on its way back to the sender."),
    Status.CANCELLED: _("This delivery was cancelled, so this page no longer updates."),
}
FINAL_NOTE = _("This journey is complete, so this page no longer updates.")


def progress(status: Status) -> list[dict]:
    """The progress bar's steps, each {"label", "state"} with state "done",
    "current" or "todo". Dicts of text: the template reads them fastest."""
    position = PROGRESS_POSITION[status]
    steps = []
    for index, step in enumerate(STEPS.get(status, PROGRESS_STEPS), start=1):
        if index < position or (index == position and status == Status.DELIVERED):
            state = "done"
        elif index == position:
            state = "current"
        else:
            state = "todo"
        steps.append({"label": str(STATUS_LABELS[step]), "state": state})
    return steps


# The progress bar depends on nothing but the status and the language, so it
# is rendered once per pair in each process rather than for every freshly
# changed page (its loop was a large part of the status card's rendering
# time in bench/page_profile.py).
@functools.lru_cache(maxsize=64)
def _progress_bar(status: Status, language: str) -> SafeString:
    return render_to_string("shipments/_progress.html", {"steps": progress(status), "off_track": status in OFF_TRACK})


def progress_bar(status: Status) -> SafeString:
    """The progress bar's list, in the active language."""
    return _progress_bar(status, translation.get_language())


class LocalTimes:
    """Moments as the page shows them, in the recipient's time zone, worked
    out once per page in Python: three date filters per moment in the
    template were most of the status card's rendering time
    (bench/page_profile.py)."""

    def __init__(self, zone: zoneinfo.ZoneInfo):
        self.zone = zone
        self.language = translation.get_language()

    def moment(self, value: datetime | None) -> dict | None:
        """{"iso", "text" ("Thu 26 Nov, 09:00"), "time" ("09:00")}, or None."""
        if value is None:
            return None
        local = value.astimezone(self.zone)
        time = f"{local.hour:02d}:{local.minute:02d}"
        return {"iso": local.isoformat(), "text": f"{_day(local.date(), self.language)}, {time}", "time": time}

    def text(self, value: datetime) -> str:
        """The moment as "Thu 26 Nov, 09:00"."""
        local = value.astimezone(self.zone)
        return f"{_day(local.date(), self.language)}, {local.hour:02d}:{local.minute:02d}"


# A day's name ("Thu 26 Nov") in a language, worked out once per process:
# formatting it took longer than the rest of a timeline event
# (bench/page_profile.py).
@functools.lru_cache(maxsize=1024)
def _day(day: date, language: str) -> str:
    with translation.override(language):
        return date_format(day, day_format(language))


@dataclass(frozen=True)
class MapView:
    destination_lat: float | None
    destination_lng: float | None
    driver_lat: float | None = None
    driver_lng: float | None = None
    driver_seen_at: datetime | None = None

    @property
    def has_driver(self) -> bool:
        return self.driver_lat is not None and self.driver_lng is not None


@dataclass(frozen=True)
class StopView:
    completed: bool
    ahead: int
    driver_lat: float | None
    driver_lng: float | None
    driver_seen_at: datetime | None


def todays_stop(stops: list[tuple], zone: zoneinfo.ZoneInfo) -> StopView | None:
    """The shipment's stop on today's route (in the recipient's time zone),
    from reads.stop_rows() of the days around today."""
    today = timezone.localdate(timezone=zone)
    for day, completed, lat, lng, seen_at, ahead in stops:
        if day == today:  # the newest such route comes first
            return StopView(completed, ahead, lat, lng, seen_at)
    return None


@functools.lru_cache(maxsize=16)
def _status_labels(language: str) -> dict[str, str]:
    """Each status's label in ``language``, escaped."""
    return {status.value: escape(str(label)) for status, label in STATUS_LABELS.items()}


# One event of the timeline (tracking.html, partial "timeline"), put together
# here rather than by a {% for %} loop in the template: its rows of template
# nodes were the largest part of a freshly changed page's rendering time
# (bench/page_profile.py).
_TIMELINE_ITEM = (
    '<li class="event{latest}"><span class="event-dot" aria-hidden="true"></span>'
    '<p class="event-status">{label}</p>{text}'
    '<p class="event-meta"><time datetime="{iso}">{when}</time>{city}</p></li>'
)


# Carriers describe their scans in English; the language the carriers' text
# is taken to be in.
CARRIER_LANGUAGE = "en"


@functools.lru_cache(maxsize=256)
def _scan_text(status: str, substatus: str, language: str) -> str:
    """A scan's description from its status and substatus in ``language``,
    escaped ("" when there is none)."""
    described = scan_description(status, substatus)
    if described is None:
        return ""
    with translation.override(language):
        return escape(str(described))


def _event_text(status: str, substatus: str, description: str, language: str) -> str:
    """The event's words: the carrier's own in English; in another language
    ours, from the status and substatus, with the carrier's kept below."""
    if not description:
        return ""
    ours = "" if language.split("-")[0] == CARRIER_LANGUAGE else _scan_text(status, substatus, language)
    if not ours:
        return f'<p class="event-text">{escape(description)}</p>'
    return (
        f'<p class="event-text">{ours}</p><p class="event-original" lang="{CARRIER_LANGUAGE}">{escape(description)}</p>'
    )


def timeline_items(rows, times: LocalTimes, extra: Sequence[tuple[datetime, str]] = ()) -> SafeString:
    """The timeline's list items, newest first, from (status, description,
    city, occurred_at, substatus) rows; every value escaped (carrier text
    is anyone's). ``extra``: (moment, escaped item) of what the customer
    sent, oldest first, each put before the first scan older than it."""
    labels = _status_labels(times.language)
    language = times.language or CARRIER_LANGUAGE
    items = [
        (
            occurred_at,
            _TIMELINE_ITEM.format(
                latest=" event-latest" if index == 0 else "",
                label=labels.get(status) or escape(status),
                text=_event_text(status, substatus, description, language),
                iso=occurred_at.isoformat(),
                when=escape(times.text(occurred_at)),
                city=f" · {escape(city)}" if city else "",
            ),
        )
        for index, (status, description, city, occurred_at, substatus) in enumerate(rows)
    ]
    for at, item in extra:
        place = next((index for index, (when, _html) in enumerate(items) if when < at), len(items))
        items.insert(place, (at, item))
    return mark_safe("\n".join(item for _at, item in items))  # noqa: S308 (every value above is escaped)


def find_page(token: str) -> PageRows | None:
    """What page_context needs: the shipment with its brand, its timeline
    and, while it shows the driver, its stops on the routes of the days
    that may be today in the recipient's time zone."""
    return page_rows(
        token,
        stops_for=[status.value for status in SHOWS_DRIVER],
        days=days_that_may_be_today(),
        statuses_done=[status.value for status in STOP_DONE],
    )


def _pickup_scan_words(status: Status, events) -> str:
    """The carrier's words on the scan that made the parcel ready for
    pickup (timeline rows, newest first): where it is, when nobody named
    the pickup point to us."""
    if status != Status.AVAILABLE_FOR_PICKUP:
        return ""
    for row_status, description, _city, _occurred_at, _substatus in events:
        if row_status == Status.AVAILABLE_FOR_PICKUP:
            return description
    return ""


def page_context(page: PageRows) -> dict:
    """Everything the page and its partials show, from find_page (one query
    on PostgreSQL, up to four elsewhere) and, for a delivered parcel, its
    rating (one more). What it says of when is true now
    (pages.promises)."""
    shipment = page.shipment
    status = shipment.status_enum
    zone = recipient_zone(shipment)
    times = LocalTimes(zone)
    brand = shipment.brand
    events = page.timeline

    map_view = None
    stops_away = None
    stop = None
    if status in SHOWS_DRIVER:
        destination = (
            round(shipment.destination_lat, DESTINATION_DECIMALS) if shipment.destination_lat is not None else None,
            round(shipment.destination_lng, DESTINATION_DECIMALS) if shipment.destination_lng is not None else None,
        )
        stop = todays_stop(page.stops, zone)
        if stop is not None and not stop.completed:
            stops_away = stop.ahead
        if stop is not None and stop.driver_lat is not None and stop.driver_lng is not None:
            map_view = MapView(*destination, stop.driver_lat, stop.driver_lng, stop.driver_seen_at)
        elif destination[0] is not None:
            map_view = MapView(*destination)

    # What the customer sent support (a query only while a report is open).
    reports = open_report_entries(shipment.pk) if AlertKind.CUSTOMER_REPORT in page.alerts else []
    position_at = stop.driver_seen_at if stop is not None else None
    when = delivery_times(shipment, page.alerts, times, timezone.now(), position_at=position_at)
    return {
        **brand_context(brand),
        **customer_actions(shipment, open_alerts=page.alerts, report_entries=reports),
        **when,
        "shipment": shipment,
        "first_name": shipment.recipient_first_name,
        "city": shipment.destination_city,
        "status": status,
        # Text rather than lazy translations, which the template would
        # translate again at each use.
        "headline": str(STATUS_LABELS[status]),
        "substatus": str(SUBSTATUS_LABELS[Substatus(shipment.substatus)]) if shipment.substatus else "",
        "message": str(STATUS_MESSAGES[status]),
        "tone": "warning" if when["late"] else TONES.get(status, "neutral"),
        "progress_bar": progress_bar(status),
        "final": shipment.is_terminal,
        "final_note": str(FINAL_NOTES.get(status, FINAL_NOTE)),
        "delivered": times.moment(shipment.delivered_at),
        "stops_away": stops_away,
        "map": map_view,
        "driver_seen": times.moment(map_view.driver_seen_at) if map_view and map_view.has_driver else None,
        "tiles_url": settings.MAP_TILES_URL,
        "events": events,
        "timeline_items": timeline_items(events, times, timeline_reports(reports, times.text)),
        "has_proof": shows_proof(shipment),
        "zone": zone,
        # The customer's delivery choice and a pickup point's hold (the map on it).
        **choice_page_context(
            shipment, lambda day: _day(day, times.language), MapView, times.text, _pickup_scan_words(status, events)
        ),
        "zone_name": str(zone_name(zone)),
    }


@dataclass(frozen=True)
class ActionsLink:
    """The tracking page's way to the customer's forms: the page is shared
    and cached, so the forms (each with a visitor's CSRF token) live on a
    page of their own, which htmx loads into the page in place."""

    anchor: str
    title: str
    text: str
    label: str


ACTIONS_LINKS = {
    "instructions": ActionsLink(
        "instructions",
        _("Delivery instructions"),
        _("Tell the driver where to leave your parcel, or get updates by text message or email."),
        _("Leave instructions or get updates"),
    ),
    "subscribe": ActionsLink(
        "get-updates",
        _("Get updates"),
        _("We can text or email you when this parcel's status changes."),
        _("Get updates"),
    ),
    "rate": ActionsLink(
        "rating", _("Rate your delivery"), _("Tell us how your delivery went."), _("Rate your delivery")
    ),
}


def customer_actions(
    shipment: Shipment, *, open_alerts: Collection[str] | None = None, report_entries: list | None = None
) -> dict:
    """What the customer can do about the parcel now, and a key that
    changes whenever that does (live updates reload the forms on it).
    ``open_alerts``: the kinds of the shipment's open alerts, read here
    (one query) when the caller has not read them; ``report_entries``:
    shipments.customer.open_report_entries, likewise."""
    status = shipment.status_enum
    if open_alerts is None:
        open_alerts = open_alert_kinds([shipment.pk]).get(shipment.pk, frozenset())
    # Only a delivered parcel can have been rated: no query for the others.
    rating = rating_of(shipment) if status == Status.DELIVERED else None
    can_leave_instructions = status in INSTRUCTIONS_OPEN
    can_rate = status == Status.DELIVERED and rating is None
    can_subscribe = not shipment.is_terminal
    # One report open at a time: support has it until staff resolve it. An
    # open customer_report may hold only an address note, which is no
    # report (a query only when one is open).
    reported = AlertKind.CUSTOMER_REPORT in open_alerts and has_open_report(shipment.pk, report_entries)
    offered = [
        name
        for name, on in (("instructions", can_leave_instructions), ("subscribe", can_subscribe), ("rate", can_rate))
        if on
    ]
    state = " ".join(offered) + (" rated" if rating is not None else "")
    # (The report's choices change with delivery, as the rating does.)
    state += " reported" if reported else ""
    if can_leave_instructions and shipment.delivery_instructions_at:
        state += f" {shipment.delivery_instructions_at.timestamp():.0f}"
    return {
        "can_leave_instructions": can_leave_instructions,
        "has_instructions": bool(shipment.delivery_instructions),
        "can_rate": can_rate,
        "rating": rating,
        "can_subscribe": can_subscribe,
        "can_report": not reported,
        "reported": reported,
        "actions_link": ACTIONS_LINKS[offered[0]] if offered else None,
        "actions_state": state,
    }
