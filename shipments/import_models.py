"""The ImportJob model: an admin CSV import handed to a worker, kept in the
database so that its progress outlives any one process and a job whose
worker died is seen as stopped (shipments.import_jobs writes it). Kept
beside models.py, which imports it."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# A running job writes its progress after every batch of rows (a few
# seconds apart on a loaded machine, bench/imports.py); this long without a
# word, its worker is taken for dead. A queued one that long: no worker took it.
STALLED_AFTER = timedelta(minutes=3)


class ImportState(models.TextChoices):
    MAPPING = "mapping", _("Columns to map")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    id = models.CharField(max_length=32, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    brand = models.ForeignKey("shipments.Brand", on_delete=models.CASCADE, related_name="+")
    file = models.CharField(max_length=255)
    name = models.CharField(max_length=200)
    header = models.JSONField(default=list)
    state = models.CharField(max_length=16, choices=ImportState.choices, default=ImportState.MAPPING)
    mapping = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=True)
    report = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Moved by every save: the worker's progress is its heartbeat.
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"

    @property
    def stalled(self) -> bool:
        """Queued or running, and not a word for STALLED_AFTER."""
        waiting = self.state in (ImportState.QUEUED, ImportState.RUNNING)
        return waiting and timezone.now() - self.updated_at > STALLED_AFTER
