"""What analytics keeps: each parcel's counted page views and support
clicks and the day it is counted on, and the daily rollup per (brand, day,
driver, carrier) that the dashboard and the API read (analytics.rollup
keeps it; analytics.metrics says what each figure means)."""

from django.db import models

from shipments.alert_rules import AlertKind

from . import buckets


class ParcelFacts(models.Model):
    """Per parcel: what the tracking page counted (folded from Redis by
    analytics.folding) and the day of the rollup it was last counted in, so
    that a parcel whose day moves (delivered, or a late earlier scan) is
    taken out of its old day."""

    shipment = models.OneToOneField(
        "shipments.Shipment", on_delete=models.CASCADE, primary_key=True, related_name="analytics_facts"
    )
    page_views = models.PositiveIntegerField(default=0)
    support_clicks = models.PositiveIntegerField(default=0)
    # Set by the fold when the counts grow: the rollup's watermark reads it.
    counts_changed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    counted_day = models.DateField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.shipment_id}: {self.page_views} views"


class FoldedBatch(models.Model):
    """A batch of counts taken from Redis and written, recorded in the same
    transaction: a batch seen again (its taker died before deleting it)
    is not counted twice."""

    id = models.CharField(max_length=40, primary_key=True)
    folded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id


class DailyRollup(models.Model):
    """The parcels of one brand counted on one day (the delivery date in
    the brand's time zone; for a parcel not delivered, the day it was
    created), for one driver ("" without a route) and one carrier. Counts
    only, so that any range and grouping is a sum; the durations out for
    delivery are a histogram of whole minutes, for medians and p90s."""

    brand = models.ForeignKey("shipments.Brand", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    driver_ref = models.CharField(max_length=64, blank=True)
    carrier = models.CharField(max_length=64, blank=True)

    parcels = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    with_window = models.PositiveIntegerField(default=0)
    on_time = models.PositiveIntegerField(default=0)
    first_attempt = models.PositiveIntegerField(default=0)
    rated = models.PositiveIntegerField(default=0)
    rating_sum = models.PositiveIntegerField(default=0)
    page_views = models.PositiveIntegerField(default=0)
    support_contacts = models.PositiveIntegerField(default=0)
    notifications_delivered = models.PositiveIntegerField(default=0)
    notifications_sent = models.PositiveIntegerField(default=0)
    notifications_failed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["brand", "day", "driver_ref", "carrier"], name="one_rollup_per_group")
        ]
        indexes = [models.Index(fields=["brand", "day"])]

    def __str__(self) -> str:
        return f"{self.brand_id} {self.day} {self.driver_ref or '-'} {self.carrier or '-'}"


# One column per alert kind and per duration bucket, named from the kinds
# and the buckets' edges so that neither list is written out twice.
ALERT_COLUMNS = {kind.value: f"alerts_{kind.value}" for kind in AlertKind}
for _column in (*ALERT_COLUMNS.values(), *buckets.COLUMNS):
    DailyRollup.add_to_class(_column, models.PositiveIntegerField(default=0))


# The rollup's watermark row (analytics.rollup writes it, the report reads it).
ROLLUP_WATERMARK = "rollup"


class Watermark(models.Model):
    """Until when the rollup has taken in changes (the start of its last run)."""

    name = models.CharField(max_length=40, primary_key=True)
    value = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.value:%Y-%m-%d %H:%M:%S}"
