"""What a person calls a time zone ("UK time", "Central European time"),
not its database key ("Europe/London"): the one home of these names, for
the pages and the messages."""

from __future__ import annotations

import zoneinfo

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

_UK = _("UK time")
_IRISH = _("Irish time")
_WESTERN_EUROPEAN = _("Western European time")
_CENTRAL_EUROPEAN = _("Central European time")
_EASTERN_EUROPEAN = _("Eastern European time")
_EASTERN = _("Eastern time")
_CENTRAL = _("Central time")
_MOUNTAIN = _("Mountain time")
_PACIFIC = _("Pacific time")

_UTC = _("UTC")
MINUS = "\N{MINUS SIGN}"

ZONE_NAMES = {
    # The database's many spellings of UTC.
    **dict.fromkeys(
        (
            "UTC",
            "Etc/UTC",
            "GMT",
            "Etc/GMT",
            "Etc/GMT0",
            "Etc/GMT+0",
            "Etc/GMT-0",
            "GMT0",
            "GMT+0",
            "GMT-0",
            "Greenwich",
            "Etc/Greenwich",
            "UCT",
            "Etc/UCT",
            "Universal",
            "Etc/Universal",
            "Zulu",
            "Etc/Zulu",
        ),
        _UTC,
    ),
    # Old names still accepted for a zone: a city's name would read oddly.
    "GB": _UK,
    "GB-Eire": _UK,
    "Eire": _IRISH,
    "WET": _WESTERN_EUROPEAN,
    "Portugal": _WESTERN_EUROPEAN,
    "CET": _CENTRAL_EUROPEAN,
    "MET": _CENTRAL_EUROPEAN,
    "Poland": _CENTRAL_EUROPEAN,
    "EET": _EASTERN_EUROPEAN,
    "EST5EDT": _EASTERN,
    "CST6CDT": _CENTRAL,
    "MST7MDT": _MOUNTAIN,
    "PST8PDT": _PACIFIC,
    # Fixed offsets under a region's letters, which keep no summer time.
    "EST": f"UTC{MINUS}05:00",
    "MST": f"UTC{MINUS}07:00",
    "HST": _("Hawaii time"),
    "Pacific/Honolulu": _("Hawaii time"),
    "Europe/London": _UK,
    "Europe/Belfast": _UK,
    "Europe/Guernsey": _UK,
    "Europe/Jersey": _UK,
    "Europe/Isle_of_Man": _UK,
    "Europe/Dublin": _IRISH,
    "Atlantic/Canary": _("Canary Islands time"),
    "Atlantic/Madeira": _WESTERN_EUROPEAN,
    **dict.fromkeys(
        (
            "Europe/Amsterdam",
            "Europe/Berlin",
            "Europe/Brussels",
            "Europe/Budapest",
            "Europe/Copenhagen",
            "Europe/Luxembourg",
            "Europe/Madrid",
            "Europe/Monaco",
            "Europe/Oslo",
            "Europe/Paris",
            "Europe/Prague",
            "Europe/Rome",
            "Europe/Stockholm",
            "Europe/Vienna",
            "Europe/Warsaw",
            "Europe/Zurich",
            "Europe/Bratislava",
            "Europe/Ljubljana",
            "Europe/Zagreb",
            "Europe/Belgrade",
            "Europe/Andorra",
            "Europe/Malta",
            "Africa/Ceuta",
        ),
        _CENTRAL_EUROPEAN,
    ),
    **dict.fromkeys(
        (
            "Europe/Athens",
            "Europe/Bucharest",
            "Europe/Helsinki",
            "Europe/Kyiv",
            "Europe/Kiev",
            "Europe/Riga",
            "Europe/Sofia",
            "Europe/Tallinn",
            "Europe/Vilnius",
        ),
        _EASTERN_EUROPEAN,
    ),
    **dict.fromkeys(("America/New_York", "America/Toronto", "America/Detroit", "US/Eastern"), _EASTERN),
    **dict.fromkeys(("America/Chicago", "America/Mexico_City", "US/Central"), _CENTRAL),
    **dict.fromkeys(("America/Denver", "America/Edmonton", "US/Mountain"), _MOUNTAIN),
    **dict.fromkeys(("America/Los_Angeles", "America/Vancouver", "US/Pacific"), _PACIFIC),
}


def zone_name(zone: zoneinfo.ZoneInfo | str):
    """The zone as people say it, translated lazily: a common zone by its
    name, a fixed offset as one ("UTC-05:00", with a minus sign), any other by its city
    ("Lisbon time")."""
    key = zone if isinstance(zone, str) else (zone.key or "UTC")
    named = ZONE_NAMES.get(key)
    if named is not None:
        return named
    offset = _fixed_offset(key)
    if offset is not None:
        return offset
    city = key.rsplit("/", 1)[-1].replace("_", " ")
    return format_lazy(_("{city} time"), city=city)


def _fixed_offset(key: str) -> str | None:
    """Etc/GMT+5 as UTC-05:00 (with a minus sign): POSIX signs these zones backwards, so
    "GMT+5" is five hours *behind* UTC, which the key itself would misstate."""
    prefix = "Etc/GMT"
    if not key.startswith(prefix) or not key[len(prefix) :].lstrip("+-").isdigit():
        return None
    hours = -int(key[len(prefix) :])
    return f"UTC{'+' if hours >= 0 else MINUS}{abs(hours):02d}:00"
