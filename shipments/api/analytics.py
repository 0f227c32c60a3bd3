"""Analytics: how the brand's deliveries went over a range of days, read
from the daily rollup (analytics.report says what each figure means)."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from analytics.report import brand_report, check_range

from .common import responses
from .problems import validation_problem

router = Router(tags=["analytics"])

QUERY_PARAMETERS = frozenset({"from", "to"})


class RangeIn(Schema):
    start: dt.date = Field(alias="from", description="First day (YYYY-MM-DD, in the brand's time zone).")
    end: dt.date = Field(alias="to", description="Last day, included; at most 366 days after from.")


class Minutes(Schema):
    median: int | None = Field(
        description="Minutes from the last out for delivery to delivered: the median, as the middle of its "
        "fixed bucket (within 2 minutes under an hour, 7 under four hours, 15 under twelve)."
    )
    p90: int | None = Field(description="The 90th percentile, read the same way.")


class Figures(Schema):
    parcels: int
    delivered: int
    on_time_rate: float | None = Field(
        description="Delivered by the end of the first promised window / delivered with a window; 0..1."
    )
    first_attempt_rate: float | None = Field(
        description="Delivered with no failed attempt and no second out for delivery / delivered; 0..1."
    )
    ofd_to_delivered_minutes: Minutes
    rating_average: float | None = Field(description="Mean score (1-5) of the rated deliveries.")
    rating_response_rate: float | None = Field(description="Rated / delivered; unrated count as unrated.")
    page_views_per_parcel: float | None
    support_contacts_per_100_parcels: float | None = Field(
        description="Clicks on the tracking page's support links plus contacts staff logged, per 100 parcels."
    )
    notification_delivery_rate: float | None = Field(
        description="Messages sent or delivered / those sent, delivered or failed."
    )
    alerts_by_kind: dict[str, int]


class DayFigures(Figures):
    day: dt.date


class DriverFigures(Figures):
    driver_ref: str = Field(description='The driver\'s ref; "" for parcels on no route.')


class CarrierFigures(Figures):
    carrier: str


class AnalyticsOut(Figures):
    start: dt.date = Field(alias="from")
    end: dt.date = Field(alias="to")
    time_zone: str = Field(description="The brand's time zone: a parcel counts on its delivery date there.")
    updated_at: dt.datetime | None = Field(description="Changes up to this moment are counted (at most a minute old).")
    by_day: list[DayFigures]
    by_driver: list[DriverFigures]
    by_carrier: list[CarrierFigures]


def _refused(name: str, message: str):
    return validation_problem([{"loc": ("query", name), "msg": message, "type": "invalid"}])


@router.get("/analytics", response=responses({200: AnalyticsOut}), summary="Delivery analytics", by_alias=True)
def analytics(request: HttpRequest, query: Query[RangeIn]):
    """On-time and first-attempt rates, alerts, time out for delivery,
    ratings, page views, support contacts and notification delivery, in
    total and by day, driver and carrier, for the days `from` to `to`."""
    unknown = sorted(set(request.GET) - QUERY_PARAMETERS)
    if unknown:
        raise validation_problem(
            [{"loc": ("query", name), "msg": "Unknown query parameter.", "type": "unknown"} for name in unknown]
        )
    refusal = check_range(query.start, query.end)
    if refusal:
        raise _refused("to", refusal)
    return brand_report(request.auth.brand, query.start, query.end)
