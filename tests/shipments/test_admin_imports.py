"""The admin's CSV import: upload into one's own brand, map, dry run,
import, results; nobody else's brand or job."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from shipments import import_jobs, imports
from shipments.import_models import STALLED_AFTER, ImportJob
from shipments.models import Shipment
from tracking_portal.celery import app as celery_app

from .admin_helpers import brand_staff

FILE = b"\xef\xbb\xbfParcel,recipient_phone,Notes\nLM1,+447700900123,x\nLM2,0770,y\nLM3,,z\n"


@pytest.fixture(autouse=True)
def eager_celery():
    """The job runs in-process, as without REDIS_URL, whatever this run's
    settings (a worker's run is the same function, import_jobs.run)."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def upload(client, brand, content=FILE, name="day.csv"):
    return client.post(
        reverse("admin:shipments_shipment_import"),
        {"brand": brand.pk, "file": SimpleUploadedFile(name, content, content_type="text/csv")},
    )


def mapping(**columns):
    """The mapping form's POST for FILE's header: Parcel, recipient_phone, Notes."""
    chosen = {"Parcel": "tracking_number", "recipient_phone": "recipient_phone", "Notes": "", **columns}
    return {f"column_{i}": chosen[name] for i, name in enumerate(["Parcel", "recipient_phone", "Notes"])}


def test_upload_map_dry_run_then_import(agent_client, brand, media):
    response = upload(agent_client, brand)
    assert response.status_code == 302
    job_url = response["Location"]
    page = agent_client.get(job_url)
    assert b"Parcel" in page.content and b"Dry run (write nothing)" in page.content

    dry = agent_client.post(job_url, {**mapping(), "dry_run": "1"}, follow=True)
    assert not Shipment.objects.exists()
    assert dry.context["record"].state == "done"
    assert dry.context["report"]["created"] == 2
    assert dry.context["refused"] == [[3, "LM2", "recipient_phone: Use the international form, like +447700900123."]]
    assert b"Dry run: nothing was written" in dry.content
    assert list(media.joinpath("imports").iterdir()), "the file stays for the real import"

    done = agent_client.post(job_url, {**mapping(), "import": "1"}, follow=True)
    assert done.context["report"]["created"] == 2
    assert b'id="refused-rows"' in done.content and b"<td>3</td>" in done.content
    assert set(Shipment.objects.filter(brand=brand).values_list("tracking_number", flat=True)) == {"LM1", "LM3"}
    assert not list(media.joinpath("imports").iterdir()), "the file is deleted once imported"

    again = agent_client.post(job_url, {**mapping(), "import": "1"}, follow=True)
    assert again.context["form"] is None and Shipment.objects.count() == 2


def test_the_mapping_page_preselects_the_standard_columns(agent_client, brand):
    page = agent_client.get(upload(agent_client, brand)["Location"])
    form = page.context["form"]
    assert [form[f"column_{i}"].initial for i in range(3)] == ["", "recipient_phone", ""]


def test_a_mapping_without_tracking_number_is_a_form_error(agent_client, brand):
    job_url = upload(agent_client, brand)["Location"]
    response = agent_client.post(job_url, {**mapping(Parcel=""), "import": "1"})
    assert response.status_code == 200
    assert b"no tracking_number column" in response.content
    assert not Shipment.objects.exists()


def test_two_columns_for_one_field_is_a_form_error(agent_client, brand):
    job_url = upload(agent_client, brand)["Location"]
    response = agent_client.post(job_url, {**mapping(Notes="recipient_phone"), "import": "1"})
    assert b"Two columns" in response.content


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", b"not a CSV file"),
        (b"order_ref\nX\n".replace(b"order_ref", b"\xff\xfe"), b"not UTF-8"),
        (b"", b"empty"),
    ],
)
def test_a_file_that_is_no_csv_is_a_form_error(agent_client, brand, content, message):
    response = upload(agent_client, brand, content)
    assert response.status_code == 200
    assert message in response.content


def test_a_file_over_the_limit_is_a_form_error(agent_client, brand, monkeypatch, settings):
    monkeypatch.setattr(imports, "MAX_BYTES", len(FILE) - 1)
    response = upload(agent_client, brand)
    assert response.status_code == 200 and b"the limit is" in response.content
    monkeypatch.setattr(imports, "MAX_BYTES", len(FILE))
    assert upload(agent_client, brand).status_code == 302
    # The server's own cap on admin uploads is the limit where it is lower.
    settings.ADMIN_MAX_IMPORT_BYTES = len(FILE) - 1
    assert b"the limit is" in upload(agent_client, brand).content


def test_staff_cannot_import_into_another_brand(agent_client, other_brand):
    response = upload(agent_client, other_brand)
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not Shipment.objects.exists()


def test_another_users_job_is_a_404(agent_client, client, brand, other_brand):
    job_url = upload(agent_client, brand)["Location"]
    colleague = brand_staff(brand, "colleague")
    client.force_login(colleague)
    assert client.get(job_url).status_code == 404
    assert client.post(job_url, {**mapping(), "import": "1"}).status_code == 404
    assert not Shipment.objects.exists()


def test_a_job_whose_brand_the_user_left_is_a_404(agent_client, agent, brand):
    job_url = upload(agent_client, brand)["Location"]
    brand.staff.remove(agent)
    assert agent_client.get(job_url).status_code == 404


def test_an_unknown_job_is_a_404(agent_client):
    assert agent_client.get(reverse("admin:shipments_shipment_import_job", args=["nope"])).status_code == 404


def test_without_the_add_permission_there_is_no_import(client, brand):
    user = brand_staff(brand, "viewer", apps=())
    client.force_login(user)
    assert client.get(reverse("admin:shipments_shipment_import")).status_code == 403


def test_a_running_job_shows_its_progress_and_refreshes(agent_client, brand):
    job_url = upload(agent_client, brand)["Location"]
    job_id = job_url.rstrip("/").rsplit("/", 1)[1]
    ImportJob.objects.filter(pk=job_id).update(
        state="running", dry_run=False, report={"last_line": 2001, "created": 1999, "unchanged": 1, "refused_count": 0}
    )
    page = agent_client.get(job_url)
    assert b'http-equiv="refresh"' in page.content
    assert b"line 2001, created 1999, unchanged 1, refused 0" in page.content


def test_with_a_worker_the_page_answers_at_once_and_the_worker_runs_the_job(agent_client, brand, monkeypatch):
    queued = []
    monkeypatch.setattr(import_jobs.import_file_task, "delay", queued.append)
    job_url = upload(agent_client, brand)["Location"]
    page = agent_client.post(job_url, {**mapping(), "import": "1"}, follow=True)
    assert page.context["record"].state == "queued" and b'http-equiv="refresh"' in page.content
    assert not Shipment.objects.exists()
    import_jobs.run(*queued)  # what the worker does with the task
    page = agent_client.get(job_url)
    assert page.context["record"].state == "done" and page.context["report"]["created"] == 2
    assert b'http-equiv="refresh"' not in page.content


def test_a_redelivered_task_does_not_run_a_job_twice(agent_client, brand, monkeypatch):
    job_url = upload(agent_client, brand)["Location"]
    agent_client.post(job_url, {**mapping(), "import": "1"})
    job_id = job_url.rstrip("/").rsplit("/", 1)[1]
    calls = []
    monkeypatch.setattr(imports, "import_csv", lambda **kwargs: calls.append(kwargs))
    import_jobs.run(job_id)
    assert calls == []


def test_the_import_task_is_registered_for_the_workers():
    from tracking_portal.celery import app

    assert "shipments.import_csv" in app.tasks


def test_the_upload_page_offers_only_the_users_brands(agent_client, brand, other_brand):
    page = agent_client.get(reverse("admin:shipments_shipment_import"))
    assert page.status_code == 200
    assert list(page.context["form"].fields["brand"].queryset) == [brand]
    assert b"window_start" in page.content and b'enctype="multipart/form-data"' in page.content


def test_a_job_whose_worker_died_says_so_and_can_be_started_again(agent_client, brand, monkeypatch, time_machine):
    queued = []
    monkeypatch.setattr(import_jobs.import_file_task, "delay", queued.append)
    job_url = upload(agent_client, brand)["Location"]
    job_id = job_url.rstrip("/").rsplit("/", 1)[1]
    agent_client.post(job_url, {**mapping(), "import": "1"})
    # A worker claims it, saves one batch's progress, and dies.
    assert ImportJob.objects.filter(pk=job_id, state="queued").update(state="running") == 1
    job = ImportJob.objects.get(pk=job_id)
    job.report = {"last_line": 2, "created": 1, "unchanged": 0, "refused_count": 0}
    job.save()
    page = agent_client.get(job_url)
    assert b"This job stopped" not in page.content and b'http-equiv="refresh"' in page.content

    time_machine.move_to(timezone.now() + STALLED_AFTER + timedelta(seconds=5))
    page = agent_client.get(job_url)
    assert b"This job stopped" in page.content
    assert b"Last heard of at line 2" in page.content
    assert b'http-equiv="refresh"' not in page.content
    # Started again, it runs to the end: the rows are the file's, once.
    agent_client.post(job_url, {**mapping(), "import": "1"})
    import_jobs.run(queued[-1])
    assert ImportJob.objects.get(pk=job_id).state == "done"
    assert sorted(Shipment.objects.values_list("tracking_number", flat=True)) == ["LM1", "LM3"]


def test_a_job_no_worker_took_says_so(agent_client, brand, monkeypatch, time_machine):
    monkeypatch.setattr(import_jobs.import_file_task, "delay", lambda job_id: None)
    job_url = upload(agent_client, brand)["Location"]
    agent_client.post(job_url, {**mapping(), "import": "1"})
    time_machine.move_to(timezone.now() + STALLED_AFTER + timedelta(seconds=5))
    assert b"no worker took it" in agent_client.get(job_url).content


def test_the_record_outlives_the_cache(agent_client, brand):
    from django.core.cache import cache

    job_url = upload(agent_client, brand)["Location"]
    cache.clear()
    assert agent_client.get(job_url).status_code == 200
