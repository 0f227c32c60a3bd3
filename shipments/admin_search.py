"""What the admin's search finds of a shipment: part of a tracking number,
of the recipient's name or of the postcode (with or without its space),
the start of an email address; an order reference or a phone number
exactly. Used by the shipments' list and the alerts' queue.

On PostgreSQL the partial matches are served by the trigram indexes of
migration 0008_search_trigrams, built on the very expressions Django's
``icontains`` / ``istartswith`` and ``compact_postcode_match`` below put
in the WHERE clause (a test checks the planner takes them); on SQLite the
same lookups scan, which is fine at the sizes SQLite serves.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Replace, Upper
from django.db.models.lookups import Contains
from django.utils.translation import gettext_lazy as _

SHIPMENT_SEARCH_FIELDS = (
    "tracking_number",
    "recipient_name",
    "^recipient_email",
    "destination_postcode",
    "=order_ref",
    "=recipient_phone",
)
HELP_TEXT = _(
    "Part of a tracking number, name or postcode; the start of an email address; an order reference or phone number."
)
# A postcode typed without its space ("SW1A1AA") is compared with the
# stored one's letters and digits only; shorter terms ("SW1A") already
# match part of the stored postcode as they are.
COMPACT_POSTCODE_LENGTHS = range(5, 11)


def search_fields(path: str = "") -> list[str]:
    """The search fields, reached through ``path`` ("shipment__") from a
    model that points at a shipment."""
    fields = []
    for field in SHIPMENT_SEARCH_FIELDS:
        sign = field[0] if field[0] in "=^" else ""
        fields.append(f"{sign}{path}{field.removeprefix(sign)}")
    return fields


def compact_postcode(term: str) -> str | None:
    """The term as a postcode's letters and digits, upper case, when it
    could be one typed without its space; else None."""
    term = term.strip()
    if any(ch.isspace() for ch in term):
        return None
    compact = term.upper()
    if len(compact) not in COMPACT_POSTCODE_LENGTHS or not compact.isascii() or not compact.isalnum():
        return None
    # Postcodes with a space in them mix letters and digits (SW1A 1AA,
    # 1012 AB, K1A 0B1); all-digit ones have no space to leave out.
    if not (any(ch.isdigit() for ch in compact) and any(ch.isalpha() for ch in compact)):
        return None
    return compact


def compact_postcode_expression(path: str = ""):
    return Replace(Upper(f"{path}destination_postcode"), Value(" "), Value(""))


def compact_postcode_match(term: str, path: str = "") -> Q | None:
    compact = compact_postcode(term)
    if compact is None:
        return None
    return Q(Contains(compact_postcode_expression(path), compact))


def with_compact_postcodes(queryset: QuerySet, results: QuerySet, term: str, path: str = "") -> QuerySet:
    """The admin's own results, and the rows whose postcode is the term
    without its space."""
    match = compact_postcode_match(term, path)
    return results if match is None else results | queryset.filter(match)
