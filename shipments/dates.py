"""How a day and a moment read, short, in each language: "Thu 26 Nov,
09:00", "jue 26 nov, 09:00", "Do 26 Nov, 09:00". Django's "M" capitalises
the month in every language; Spanish writes it in small letters ("b")."""

from __future__ import annotations

from django.utils import translation

DAY_FORMATS = {"es": "D j b"}
DAY_FORMAT = "D j M"


def day_format(language: str | None = None) -> str:
    language = (language or translation.get_language() or "en").split("-")[0]
    return DAY_FORMATS.get(language, DAY_FORMAT)


def moment_format(language: str | None = None) -> str:
    return day_format(language) + ", H:i"
