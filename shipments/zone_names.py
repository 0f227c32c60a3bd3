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

ZONE_NAMES = {
    "UTC": _("UTC"),
    "Etc/UTC": _("UTC"),
    "GMT": _("UTC"),
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
    name, any other by its city ("Lisbon time")."""
    key = zone if isinstance(zone, str) else (zone.key or "UTC")
    named = ZONE_NAMES.get(key)
    if named is not None:
        return named
    city = key.rsplit("/", 1)[-1].replace("_", " ")
    return format_lazy(_("{city} time"), city=city)
