"""Alerts: what about the brand's deliveries needs a person (stuck, late,
a failed attempt with no retry, ...), newest first."""

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.pagination import LimitOffsetPagination, paginate

from .. import selectors
from ..alert_rules import AlertKind
from .common import responses
from .problems import validation_problem

router = Router(tags=["alerts"])

QUERY_PARAMETERS = frozenset({"state", "kind", "limit", "offset"})


class BoundedPagination(LimitOffsetPagination):
    """Ninja's limit and offset, with bounds: a page of at most 500, and an
    offset a database takes (an unbounded one overflowed PostgreSQL's)."""

    class Input(Schema):
        limit: int = Field(100, ge=1, le=500)
        offset: int = Field(0, ge=0, le=1_000_000_000)

    def __init__(self, **kwargs):
        super().__init__(max_limit=500, **kwargs)


KindName = Literal[tuple(kind.value for kind in AlertKind)]  # type: ignore[valid-type]


class AlertFilters(Schema):
    state: Literal["open", "resolved"] | None = Field(None, description="Only open, or only resolved, alerts.")
    kind: KindName | None = Field(None, description="Only alerts of this kind.")


class AlertOut(Schema):
    kind: str
    state: str
    tracking_number: str = Field(alias="shipment.tracking_number")
    opened_at: datetime
    resolved_at: datetime | None
    detail: dict = Field(description="Why it opened, as it was then (the status, the window, the ETA, ...).")


@router.get("/alerts", response=responses({200: list[AlertOut]}), summary="List alerts")
@paginate(BoundedPagination)
def list_alerts(request: HttpRequest, filters: Query[AlertFilters]):
    """The brand's alerts, newest first; filter by `state` and `kind`."""
    unknown = sorted(set(request.GET) - QUERY_PARAMETERS)
    if unknown:
        # A misspelt filter must not quietly list everything.
        raise validation_problem(
            [{"loc": ("query", name), "msg": "Unknown query parameter.", "type": "unknown"} for name in unknown]
        )
    return selectors.brand_alerts(request.auth.brand, state=filters.state, kind=filters.kind)
