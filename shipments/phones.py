"""Phone numbers as people read them ("+44 20 7946 0000"), from the E.164
form they are stored in: the one home of that rule, for every page that
shows one."""

from __future__ import annotations

import functools

import phonenumbers


@functools.lru_cache(maxsize=1024)
def readable_phone(number: str) -> str:
    """``number`` grouped in the international format of its country; as
    stored when it is no number phonenumbers can parse."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_possible_number(parsed):
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
