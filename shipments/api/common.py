"""What the API's endpoints share: the problem shape in the OpenAPI
document, the error answers each declares, and turning services' outcomes
into answers."""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema

from ..services import EventRejected, ItemOutcome, UnknownShipment
from .problems import PROBLEM_BASE


class FieldProblem(Schema):
    detail: str
    code: str = ""
    pointer: str | None = Field(None, description="A JSON pointer into the body, like #/events/3/occurred_at.")
    parameter: str | None = Field(None, description="The path or query parameter at fault.")


class ProblemOut(Schema):
    """An error, as RFC 9457 describes."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = None


# Every authenticated JSON endpoint can answer these.
COMMON_ERRORS = frozenset({400, 401, 413, 422, 429, 503})


def responses(ok: dict[int, Any], *extra_errors: int) -> dict:
    return {**ok, frozenset(COMMON_ERRORS | set(extra_errors)): ProblemOut}


def item_error(index: int, rejected: EventRejected, base: str = "#/events") -> dict:
    unknown = isinstance(rejected, UnknownShipment)
    field_parts = rejected.field.replace(".", "/") if rejected.field else ""
    return {
        "type": PROBLEM_BASE + ("unknown-tracking-number" if unknown else "invalid-event"),
        "title": "Unknown tracking number" if unknown else "Invalid event",
        "status": 404 if unknown else 422,
        "detail": str(rejected),
        "pointer": f"{base}/{index}" + (f"/{field_parts}" if field_parts else ""),
    }


def batch_answer(outcomes: list[ItemOutcome], base: str = "#/events") -> dict:
    """The per-item answer; ``base`` points at the list the items came from
    (a carrier's body has its own shape), and an error's pointer names the
    item, and the field when the service said which."""
    results = []
    counts = {"accepted": 0, "duplicate": 0, "error": 0}
    for index, outcome in enumerate(outcomes):
        counts[outcome.result] += 1
        item: dict[str, Any] = {"index": index, "result": outcome.result}
        if outcome.error is not None:
            item["error"] = item_error(index, outcome.error, base)
        results.append(item)
    return {
        "accepted": counts["accepted"],
        "duplicates": counts["duplicate"],
        "errors": counts["error"],
        "results": results,
    }
