"""The Alert model: something about a delivery that needs a person (see
shipments/alert_rules.py for the kinds and shipments/alerts.py for the one
writer). Kept beside models.py, which imports it, so that neither passes
the house's module length.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .alert_rules import AlertKind

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
    resolution = models.CharField(max_length=32, blank=True, help_text=_("The reason code it was resolved with."))
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
