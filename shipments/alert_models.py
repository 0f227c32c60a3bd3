"""The Alert model: something about a delivery that needs a person (see
shipments/alert_rules.py for the kinds and shipments/alerts.py for the one
writer). Kept beside models.py, which imports it, so that neither passes
the house's module length.
"""

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .alert_rules import AlertKind, Thresholds
from .statuses import Status

ALERT_KIND_LABELS = {
    AlertKind.STUCK: _("Stuck"),
    AlertKind.LATE: _("Running late"),
    AlertKind.MISSED_SCAN: _("Missed scan"),
    AlertKind.DELIVERED_AWAY: _("Delivered away from the address"),
    AlertKind.FAILED_NO_RETRY: _("Failed attempt, no retry"),
    AlertKind.CARRIER_EXCEPTION: _("Carrier exception"),
    AlertKind.CUSTOMER_REPORT: _("Reported by the customer"),
}
ALERT_KIND_CHOICES = [(kind.value, label) for kind, label in ALERT_KIND_LABELS.items()]


class AlertState(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")


class Resolution(models.TextChoices):
    """Why an alert was resolved: its rule, or a reason staff chose."""

    RULE = "rule", _("Its rule no longer holds")
    DELIVERED = "delivered", _("Delivered after all")
    REDELIVERY = "redelivery", _("Redelivery arranged")
    CUSTOMER_CONTACTED = "customer_contacted", _("Customer contacted, sorted out")
    CARRIER_CONFIRMED = "carrier_confirmed", _("Carrier or driver confirmed it")
    REFUNDED = "refunded", _("Refunded or replaced")
    FALSE_ALARM = "false_alarm", _("False alarm")
    OTHER = "other", _("Other (see the notes)")


# The reasons staff choose from (the rule's own is not theirs to give).
STAFF_RESOLUTIONS = [(value, label) for value, label in Resolution.choices if value != Resolution.RULE]


class Alert(models.Model):
    """One alert of one kind on one shipment. At most one open alert per
    (shipment, kind): a partial unique constraint says so. Written only by
    shipments.alerts, which leaves a Notice (the outbox) for each opening
    and resolution in the same transaction."""

    shipment = models.ForeignKey("shipments.Shipment", on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32, choices=ALERT_KIND_CHOICES)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OPEN)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.CharField(
        max_length=32, blank=True, choices=Resolution.choices, help_text=_("The reason code it was resolved with.")
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shipment", "kind"], condition=models.Q(state="open"), name="one_open_alert_per_kind"
            ),
        ]
        indexes = [models.Index(fields=["state", "opened_at"])]
        ordering = ["-opened_at", "-id"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")

    def __str__(self) -> str:
        return f"{self.shipment_id}: {self.kind} ({self.state})"


class ContactTopic(models.TextChoices):
    """The messages about an alert a customer can get: ``late`` and
    ``missed_scan`` go out by themselves when those alerts open; staff
    choose any of them from the queue. Their wording (en/es/de, editable per
    brand) is the notifications app's."""

    LATE = "late", _("Running late")
    MISSED_SCAN = "missed_scan", _("We're checking on your parcel")
    LOOKING_INTO_IT = "looking_into_it", _("We're looking into your delivery")
    REDELIVERY = "redelivery", _("Let's arrange a new delivery")


class ActivityAction(models.TextChoices):
    OPENED = "opened", _("Opened")
    ASSIGNED = "assigned", _("Assigned")
    UNASSIGNED = "unassigned", _("Unassigned")
    NOTE = "note", _("Note")
    CONTACTED = "contacted", _("Customer contacted")
    RESOLVED = "resolved", _("Resolved")


class AlertActivity(models.Model):
    """The audit trail of one alert: who did what, when. Written beside
    every change staff make (and the rules' openings and resolutions);
    never edited."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="activity")
    at = models.DateTimeField(default=timezone.now)
    # None: the portal's rules.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=16, choices=ActivityAction.choices)
    text = models.CharField(max_length=2000, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["alert", "at"])]
        ordering = ["at", "id"]
        verbose_name = _("alert activity")
        verbose_name_plural = _("alert activity")

    def __str__(self) -> str:
        return f"{self.alert_id}: {self.action} @ {self.at:%Y-%m-%d %H:%M}"


def _hours(default: int, most: int = 24 * 14) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(default=default, validators=[MinValueValidator(1), MaxValueValidator(most)])


class BrandAlertSettings(models.Model):
    """A brand's own alert thresholds. A brand without a row uses the
    defaults of shipments.alert_rules.Thresholds."""

    brand = models.OneToOneField("shipments.Brand", on_delete=models.CASCADE, related_name="alert_settings")
    stuck_info_received_hours = _hours(24)
    stuck_in_transit_hours = _hours(24)
    stuck_out_for_delivery_hours = _hours(4)
    failed_no_retry_hours = _hours(24)
    delivered_away_m = models.PositiveIntegerField(
        default=200, validators=[MinValueValidator(25), MaxValueValidator(5000)]
    )
    missed_scan_near_m = models.PositiveIntegerField(
        default=75, validators=[MinValueValidator(25), MaxValueValidator(500)]
    )
    missed_scan_dwell_seconds = models.PositiveIntegerField(
        default=120, validators=[MinValueValidator(30), MaxValueValidator(3600)]
    )
    missed_scan_leave_m = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(100), MaxValueValidator(5000)]
    )

    class Meta:
        verbose_name = _("brand alert settings")
        verbose_name_plural = _("brand alert settings")

    def __str__(self) -> str:
        return str(self.brand)

    def thresholds(self) -> Thresholds:
        return Thresholds(
            stuck_after={
                Status.INFO_RECEIVED: timedelta(hours=self.stuck_info_received_hours),
                Status.IN_TRANSIT: timedelta(hours=self.stuck_in_transit_hours),
                Status.OUT_FOR_DELIVERY: timedelta(hours=self.stuck_out_for_delivery_hours),
            },
            failed_no_retry_after=timedelta(hours=self.failed_no_retry_hours),
            delivered_away_m=float(self.delivered_away_m),
            missed_scan_near_m=float(self.missed_scan_near_m),
            missed_scan_dwell=timedelta(seconds=self.missed_scan_dwell_seconds),
            missed_scan_leave_m=float(self.missed_scan_leave_m),
        )
