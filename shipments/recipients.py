"""The recipient's time zone and language: one rule each, which the
tracking pages and the messages sent about a parcel both follow."""

from __future__ import annotations

import zoneinfo

from django.conf import settings

from .models import Shipment

LANGUAGE_CODES = frozenset(code for code, _name in settings.LANGUAGES)


def recipient_zone(shipment: Shipment) -> zoneinfo.ZoneInfo:
    """The recipient's own time zone, else the brand's default, else UTC.
    A name that is no known zone (stored before it was checked) is passed
    over for the next, never taken as UTC."""
    for name in (shipment.recipient_timezone, shipment.brand.default_timezone):
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo("UTC")


def portal_language(code: str) -> str:
    """The language the portal speaks for a code such as "en-GB" or "DE":
    the language without its region, or "" when the portal has none."""
    language = (code or "").split("-")[0].lower()
    return language if language in LANGUAGE_CODES else ""


def recipient_language(shipment: Shipment) -> str:
    """The recipient's language, else the brand's default, each as
    ``portal_language`` folds it ("en-GB" is "en"), else LANGUAGE_CODE."""
    for candidate in (shipment.recipient_language, shipment.brand.default_language):
        language = portal_language(candidate)
        if language:
            return language
    return settings.LANGUAGE_CODE
