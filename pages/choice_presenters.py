"""What the tracking page shows of the customer's delivery choice and of a
parcel waiting at a pickup point: public words only. A pickup point's
address is a shop's and may be shown; the customer's own never is."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from shipments.choice_models import CHOICE_DETAIL_MAX_LENGTH, ChoiceKind, DeliveryChoice, PickupHold, PickupPoint
from shipments.choices import active_pickup_points, choice_of, hold_of, offered_days
from shipments.dates import day_format
from shipments.models import Shipment
from shipments.recipients import recipient_zone
from shipments.statuses import Status, offers_delivery_choice, takes_address_note

# The statuses whose page speaks of a choice or a hold; the others read
# nothing more.
READS_CHOICE = frozenset({Status.FAILED_ATTEMPT, Status.AVAILABLE_FOR_PICKUP})

WEEKDAY_NAMES = (
    gettext_lazy("Monday"),
    gettext_lazy("Tuesday"),
    gettext_lazy("Wednesday"),
    gettext_lazy("Thursday"),
    gettext_lazy("Friday"),
    gettext_lazy("Saturday"),
    gettext_lazy("Sunday"),
)


def opening_hours_rows(point: PickupPoint) -> list[dict]:
    """Each weekday with its opening times, "Closed" on a day without any,
    Monday first: [{"day", "hours"}]; none at all for a point whose hours
    nobody entered (a week of "Closed" would be made up)."""
    if not point.opening_hours:
        return []
    by_day: dict[int, list[str]] = {}
    for row in sorted(point.opening_hours or [], key=lambda row: (row["day"], row["opens"])):
        by_day.setdefault(row["day"], []).append(f"{row['opens']}–{row['closes']}")
    return [
        {"day": str(WEEKDAY_NAMES[day]), "hours": ", ".join(by_day[day]) if day in by_day else _("Closed")}
        for day in range(7)
    ]


def point_view(point: PickupPoint) -> dict:
    address = ", ".join(part for part in (point.line1, point.line2, f"{point.postcode} {point.city}".strip()) if part)
    return {"id": point.pk, "name": point.name, "address": address, "hours": opening_hours_rows(point), "point": point}


def pickup_points_with_map(points) -> dict:
    """The pickup points to choose from, those with a place lettered for
    their markers on the map (A, B, …), and the map's tiles when any has
    one: ``pickup_points``, ``pickup_map_tiles``."""
    views, placed = [], 0
    for point in points:
        view = point_view(point)
        if point.lat is not None and point.lng is not None:
            view.update(letter=_letter(placed), lat=f"{point.lat:.5f}", lng=f"{point.lng:.5f}")
            placed += 1
        views.append(view)
    return {"pickup_points": views, "pickup_map_tiles": settings.MAP_TILES_URL if placed else ""}


def _letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def choice_sentence(choice: DeliveryChoice, day_text) -> str:
    """What will happen next, as the page confirms it."""
    if choice.kind == ChoiceKind.NEW_DAY:
        return _("We'll bring it on %(day)s.") % {"day": day_text(choice.date)}
    if choice.kind == ChoiceKind.SAFE_PLACE:
        return _("On the next attempt the driver will leave it in your safe place: %(place)s") % {
            "place": choice.detail
        }
    if choice.kind == ChoiceKind.NEIGHBOUR:
        return _("On the next attempt the driver will leave it with your neighbour: %(neighbour)s") % {
            "neighbour": choice.detail
        }
    return _("We'll take it to %(point)s for you to collect. We'll tell you when it is ready.") % {
        "point": choice.pickup_point.name
    }


def with_choice(shipment_id: int) -> Shipment | None:
    """The shipment's choice and hold with their pickup points: one query."""
    return (
        Shipment.objects.filter(pk=shipment_id)
        .select_related("delivery_choice__pickup_point", "pickup_hold__pickup_point")
        .only(
            "pk",
            *(f"delivery_choice__{name}" for name in ("kind", "detail", "date", "updated_at", "pickup_point")),
            *(f"pickup_hold__{name}" for name in ("collection_code", "collect_by", "updated_at", "pickup_point")),
        )
        .first()
    )


def choice_page_context(shipment: Shipment, day_text, map_view_type, moment_text, latest_message: str = "") -> dict:
    """The page's words on the choice and the hold: ``delivery_choice``
    ({"sentence", "at"}), ``pickup`` (the point, the code, the deadline)
    and, for a parcel waiting at a point with a location, the map on it;
    ``pickup_unknown`` when it waits at a point nobody has named to us.
    ``day_text`` writes a date as the page does ("Tue 8 Dec"),
    ``moment_text`` a moment ("Tue 8 Dec, 09:00"); ``latest_message`` is
    the carrier's words on the newest scan."""
    status = shipment.status_enum
    context: dict = {
        "delivery_choice": None,
        "pickup": None,
        "timeline_choice": "",
        "can_choose_delivery": offers_delivery_choice(status, shipment.substatus),
        "can_note_address": takes_address_note(status, shipment.substatus),
        "map_is_pickup": False,
        "pickup_unknown": None,
    }
    if status not in READS_CHOICE:
        return context
    found = with_choice(shipment.pk)
    choice = choice_of(found) if found is not None else None
    hold = hold_of(found) if found is not None else None
    if choice is not None and status == Status.FAILED_ATTEMPT:
        sentence = choice_sentence(choice, day_text)
        context["delivery_choice"] = {"sentence": sentence, "kind": choice.kind}
        context["timeline_choice"] = timeline_choice(choice, sentence, moment_text)
    if status == Status.AVAILABLE_FOR_PICKUP:
        context.update(waiting_at(hold, day_text, map_view_type, latest_message))
    return context


def waiting_at(hold: PickupHold | None, day_text, map_view_type, latest_message) -> dict:
    """Where a parcel ready for pickup waits: the hold's point (the brand's
    word, or the customer's choice: shipments.choices) with its code and
    deadline; without a hold, nothing we could name, which the page says
    rather than guessing, pointing to the carrier's own words."""
    if hold is None:
        return {"pickup_unknown": {"carrier_message": latest_message}}
    point, code, collect_by = hold.pickup_point, hold.collection_code, hold.collect_by
    found: dict = {
        "pickup": {
            **point_view(point),
            "code": code,
            "collect_by": day_text(collect_by) if collect_by else "",
            "collect_by_iso": collect_by.isoformat() if collect_by else "",
        }
    }
    if point.lat is not None and point.lng is not None:
        found["map"] = map_view_type(point.lat, point.lng)
        found["map_is_pickup"] = True
    return found


# The customer's choice on the timeline, in the form of its other items
# (pages.presenters._TIMELINE_ITEM).
_CHOICE_ITEM = (
    '<li class="event event-choice"><span class="event-dot" aria-hidden="true"></span>'
    '<p class="event-status">{label}</p><p class="event-text">{text}</p>'
    '<p class="event-meta"><time datetime="{iso}">{when}</time></p></li>'
)


def timeline_choice(choice: DeliveryChoice, sentence: str, moment_text) -> SafeString:
    """The choice as the newest item of the timeline (a choice is made
    after the failed attempt it answers); every value escaped."""
    local = timezone.localtime(choice.updated_at)
    return format_html(
        _CHOICE_ITEM, label=_("Your choice"), text=sentence, iso=local.isoformat(), when=moment_text(choice.updated_at)
    )


def recipient_today(shipment: Shipment):
    """Today where the recipient is: the day new days are counted from."""
    return timezone.localdate(timezone=recipient_zone(shipment))


def _day_text(day) -> str:
    return date_format(day, day_format())


def choice_forms_context(shipment: Shipment, day_text=_day_text) -> dict:
    """What the customer's forms page needs to offer the choices that fit
    the parcel now: after a failed attempt the days, the pickup points and
    the current choice; before delivery the address note."""
    status, substatus = shipment.status_enum, shipment.substatus
    context: dict = {
        "can_choose_delivery": offers_delivery_choice(status, substatus),
        "can_note_address": takes_address_note(status, substatus),
    }
    if context["can_choose_delivery"]:
        choice = choice_of(with_choice(shipment.pk) or shipment)
        context.update(
            text_choices=[
                (
                    ChoiceKind.SAFE_PLACE.value,
                    "safe_place",
                    _("Leave it in a safe place"),
                    _("Where should the driver leave it?"),
                    _("For example: in the porch, behind the side gate."),
                    _("Leave it there"),
                ),
                (
                    ChoiceKind.NEIGHBOUR.value,
                    "neighbour",
                    _("Leave it with a neighbour"),
                    _("Your neighbour's name and house number"),
                    _("For example: Sam Patel, number 14."),
                    _("Leave it with them"),
                ),
            ],
            detail_max_length=CHOICE_DETAIL_MAX_LENGTH,
            offered_days=[
                {"value": day.isoformat(), "text": day_text(day)}
                for day in offered_days(shipment.brand, recipient_today(shipment))
            ],
            **pickup_points_with_map(active_pickup_points(shipment.brand)),
            current_choice=(
                {
                    "sentence": choice_sentence(choice, day_text),
                    "kind": choice.kind,
                    "value": choice.date.isoformat() if choice.date else choice.detail,
                    "pickup_point": choice.pickup_point_id,
                }
                if choice is not None
                else None
            ),
        )
    return context


# What the page says of what the customer sent support: never their own
# words (a note on the address may hold the street), only what it was.
REPORT_SENTENCES = {
    "address_note": gettext_lazy("Your note on the address went to the support team."),
    "not_received": gettext_lazy("You told us the parcel has not arrived. The support team has it."),
    "damaged": gettext_lazy("You told us the parcel is damaged. The support team has it."),
    "other": gettext_lazy("You told us something is wrong. The support team has it."),
}


def timeline_reports(entries, moment_text) -> list[tuple]:
    """(moment, item) for the timeline of each thing the customer sent
    that support holds (shipments.customer.open_report_entries), oldest
    first, in the form of the choice's item; every value escaped."""
    items = []
    for at, problem in entries:
        sentence = REPORT_SENTENCES.get(problem)
        if sentence is None:
            continue
        local = timezone.localtime(at)
        item = format_html(
            _CHOICE_ITEM, label=_("Your message to support"), text=sentence, iso=local.isoformat(), when=moment_text(at)
        )
        items.append((at, item))
    return items
