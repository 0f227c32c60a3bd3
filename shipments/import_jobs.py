"""An admin import as a job: the uploaded file in storage, a progress record
in the database (ImportJob), and a Celery task that runs shipments.imports
on it.

A big file takes longer than a request should, so the admin hands it to a
worker and shows the record until the job is done; without REDIS_URL,
Celery runs the task in-process and the page that started it waits for it
(the embedded default). The worker saves the record after every batch: a
job queued or running with no save for STALLED_AFTER is shown as stopped
(its worker died, or none is running), and can be started again, which
is safe since an import is idempotent on tracking number. The file is
deleted when a real import is done, and any left behind (a dry run never
followed by its import) is deleted with the next upload after a day.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _t

from . import imports
from .import_models import ImportJob, ImportState
from .models import Brand

# Files and jobs older than this are deleted with the next upload.
RECORD_SECONDS = 24 * 3600
FOLDER = "imports"
# A worker's limits for the import task: a file at the limits of
# shipments.imports takes well under this (bench/imports.py).
TIME_LIMIT = 15 * 60


def new_job(*, user, brand: Brand, upload, header: list[str]) -> str:
    """Store the upload and open its record; the job id is unguessable."""
    _delete_stale_files()
    job_id = secrets.token_urlsafe(16)
    stored = default_storage.save(f"{FOLDER}/{job_id}.csv", File(upload))
    ImportJob.objects.create(id=job_id, user=user, brand=brand, file=stored, name=upload.name[:200], header=header)
    return job_id


def load(job_id: str) -> ImportJob | None:
    return ImportJob.objects.filter(pk=job_id).first()


def can_start(job: ImportJob) -> bool:
    """Mapped and started from the admin: a new job, a dry run done, or a
    job whose worker stopped (an import already done has no file left)."""
    return job.state == ImportState.MAPPING or (job.state == ImportState.DONE and job.dry_run) or job.stalled


def start(job_id: str, *, mapping: dict[str, str], dry_run: bool) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        state=ImportState.QUEUED, mapping=mapping, dry_run=dry_run, report=None, error="", updated_at=timezone.now()
    )
    import_file_task.delay(job_id)


@shared_task(name="shipments.import_csv", soft_time_limit=TIME_LIMIT, time_limit=TIME_LIMIT + 60)
def import_file_task(job_id: str) -> None:
    run(job_id)


def run(job_id: str) -> None:
    """Run a queued job and keep its record up to date, batch by batch."""
    # Claimed with a conditional update: a redelivered task, or a second
    # worker, claims nothing and leaves.
    claimed = ImportJob.objects.filter(pk=job_id, state=ImportState.QUEUED).update(
        state=ImportState.RUNNING, updated_at=timezone.now()
    )
    if not claimed:
        return
    job = ImportJob.objects.select_related("brand").get(pk=job_id)

    def progress(report: imports.ImportReport) -> None:
        job.report = report.as_dict()
        job.save(update_fields=["report", "updated_at"])

    try:
        with default_storage.open(job.file, "rb") as source:
            report = imports.import_csv(
                brand=job.brand, source=source, mapping=job.mapping, dry_run=job.dry_run, on_progress=progress
            )
    except imports.FileRefused as refused:
        job.state, job.error = ImportState.FAILED, str(refused)
    except SoftTimeLimitExceeded:
        job.state = ImportState.FAILED
        job.error = _t("The import took longer than the worker allows; the rows before it stopped were imported.")
    else:
        job.state, job.report = ImportState.DONE, report.as_dict()
    if not job.dry_run or job.state == ImportState.FAILED:
        default_storage.delete(job.file)
    job.save()


def _delete_stale_files() -> None:
    stale = timezone.now() - timedelta(seconds=RECORD_SECONDS)
    ImportJob.objects.filter(updated_at__lt=stale).delete()
    try:
        _, files = default_storage.listdir(FOLDER)
    except FileNotFoundError:
        return
    for name in files:
        path = f"{FOLDER}/{name}"
        if default_storage.get_modified_time(path) < stale:
            default_storage.delete(path)
