"""An admin import as a job: the uploaded file in storage, a progress record
in the cache, and a Celery task that runs shipments.imports on it.

A big file takes longer than a request should, so the admin hands it to a
worker and shows the record until the job is done; without REDIS_URL,
Celery runs the task in-process and the page that started it waits for it
(the embedded default). The record lives in the cache (Redis in
production, shared with the workers) for RECORD_SECONDS; the file is
deleted when a real import is done, and any left behind (a dry run never
followed by its import) is deleted with the next upload after a day.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from celery import shared_task
from django.core.cache import cache
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.utils import timezone

from . import imports
from .models import Brand

RECORD_SECONDS = 24 * 3600
FOLDER = "imports"
KEY = "shipments:import:{}"
# A worker's limits for the import task: a file at the limits of
# shipments.imports takes well under this (bench/imports.py).
TIME_LIMIT = 15 * 60


def new_job(*, user, brand: Brand, upload, header: list[str]) -> str:
    """Store the upload and open its record; the job id is unguessable."""
    _delete_stale_files()
    job_id = secrets.token_urlsafe(16)
    stored = default_storage.save(f"{FOLDER}/{job_id}.csv", File(upload))
    save(
        job_id,
        {
            "user_id": user.pk,
            "brand_id": brand.pk,
            "file": stored,
            "name": upload.name[:200],
            "header": header,
            "state": "mapping",
            "mapping": {},
            "dry_run": True,
            "report": None,
            "error": "",
        },
    )
    return job_id


def load(job_id: str) -> dict | None:
    return cache.get(KEY.format(job_id))


def save(job_id: str, record: dict) -> None:
    cache.set(KEY.format(job_id), record, RECORD_SECONDS)


def start(job_id: str, *, mapping: dict[str, str], dry_run: bool) -> None:
    record = load(job_id)
    record.update(state="queued", mapping=mapping, dry_run=dry_run, report=None, error="")
    save(job_id, record)
    import_file_task.delay(job_id)


@shared_task(name="shipments.import_csv", soft_time_limit=TIME_LIMIT, time_limit=TIME_LIMIT + 60)
def import_file_task(job_id: str) -> None:
    run(job_id)


def run(job_id: str) -> None:
    """Run a queued job and keep its record up to date, batch by batch."""
    record = load(job_id)
    if record is None or record["state"] != "queued":
        return  # expired, or already run by a redelivered task
    record["state"] = "running"
    save(job_id, record)
    brand = Brand.objects.get(pk=record["brand_id"])

    def progress(report: imports.ImportReport) -> None:
        record["report"] = report.as_dict()
        save(job_id, record)

    try:
        with default_storage.open(record["file"], "rb") as source:
            report = imports.import_csv(
                brand=brand, source=source, mapping=record["mapping"], dry_run=record["dry_run"], on_progress=progress
            )
    except imports.FileRefused as refused:
        record.update(state="failed", error=str(refused))
    else:
        record.update(state="done", report=report.as_dict())
    if not record["dry_run"] or record["state"] == "failed":
        default_storage.delete(record["file"])
    save(job_id, record)


def _delete_stale_files() -> None:
    try:
        _, files = default_storage.listdir(FOLDER)
    except FileNotFoundError:
        return
    stale = timezone.now() - timedelta(seconds=RECORD_SECONDS)
    for name in files:
        path = f"{FOLDER}/{name}"
        if default_storage.get_modified_time(path) < stale:
            default_storage.delete(path)
