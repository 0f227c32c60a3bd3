"""Tasks against the configured broker (kombu's in-memory transport on the
embedded defaults, Redis when REDIS_URL is set)."""

import threading
import time

import pytest
from django.conf import settings

from notifications import tasks
from tracking_portal.celery import app as celery_app


@pytest.fixture
def queued_messages():
    """Publish for real (not eagerly) and read back what reached the queue."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    # What earlier tests left to the publisher threads, before the purge.
    tasks.publisher.flush()
    tasks.notice_publisher.flush()
    celery_app.control.purge()

    def read():
        messages = []
        with celery_app.connection_for_read() as connection:
            queue = connection.SimpleQueue(celery_app.conf.task_default_queue)
            while True:
                try:
                    message = queue.get(block=True, timeout=0.5)
                except queue.Empty:
                    break
                messages.append((message.headers["task"], message.headers.get("eta"), message.payload[0]))
                message.ack()
            queue.close()
        return messages

    yield read
    celery_app.control.purge()
    celery_app.conf.task_always_eager = saved


def test_countdowns_stay_below_the_visibility_timeout():
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > tasks.MAX_COUNTDOWN


def test_a_short_retry_is_a_countdown_and_a_long_one_is_left_to_the_sweep(queued_messages):
    tasks.schedule_retry(41, 30)
    tasks.schedule_retry(42, tasks.MAX_COUNTDOWN + 1)
    [(task, eta, args)] = queued_messages()
    assert (task, args) == ("notifications.send", [41])
    assert eta is not None


def test_the_signal_enqueues_planning(queued_messages, shipment, django_capture_on_commit_callbacks):
    from shipments import services

    from ..conftest import event

    with django_capture_on_commit_callbacks(execute=True):
        recorded = services.record_event(shipment_id=shipment.pk, event=event("delivered", 1))
    assert ("notifications.plan", None, [[recorded.status_change.pk]]) in queued_messages()


def test_a_batch_of_changes_is_planned_in_a_few_chunked_tasks(
    queued_messages, brand, make_shipment, django_capture_on_commit_callbacks
):
    from shipments import services

    from ..conftest import event

    shipments = [make_shipment() for _ in range(tasks.PLAN_CHUNK + 5)]
    items = [(s.tracking_number, event("delivered", 1)) for s in shipments]
    with django_capture_on_commit_callbacks(execute=True):
        services.record_brand_events(brand=brand, items=items)
    plans = [args for task, _, args in queued_messages() if task == "notifications.plan"]
    assert [len(chunk) for [chunk] in plans] == [tasks.PLAN_CHUNK, 5]
    from shipments.models import StatusChange

    assert sorted(pk for [chunk] in plans for pk in chunk) == sorted(StatusChange.objects.values_list("pk", flat=True))


class Recorded:
    """A publish function that notes each message's ids."""

    def __init__(self, fail_first=False):
        self.messages: list[list[int]] = []
        self.fail_first = fail_first
        self.published = threading.Event()

    def __call__(self, ids):
        if self.fail_first:
            self.fail_first = False
            raise ConnectionError("broker down")
        self.messages.append(list(ids))
        self.published.set()


def wait_for_messages(recorded, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while sum(len(m) for m in recorded.messages) < count and time.monotonic() < deadline:
        time.sleep(0.005)


def test_a_lone_change_is_published_at_once():
    recorded = Recorded()
    publisher = tasks.PlanPublisher(interval=5.0, publish=recorded)
    publisher.submit([1])
    assert recorded.published.wait(1.0), "waited for the interval instead of publishing at once"
    assert recorded.messages == [[1]]


def test_changes_committed_close_together_share_a_message():
    recorded = Recorded()
    publisher = tasks.PlanPublisher(interval=0.3, publish=recorded)
    publisher.submit([1])
    recorded.published.wait(1.0)
    for pk in (2, 3, 4):
        publisher.submit([pk])
    wait_for_messages(recorded, 4)
    assert recorded.messages == [[1], [2, 3, 4]]


def test_a_failed_publish_is_logged_and_the_thread_carries_on(caplog):
    recorded = Recorded(fail_first=True)
    publisher = tasks.PlanPublisher(interval=0.01, publish=recorded)
    publisher.submit([1])
    time.sleep(0.2)
    publisher.submit([2])
    wait_for_messages(recorded, 1)
    assert recorded.messages == [[2]]
    assert "Could not publish planning of 1 status changes" in caplog.text


def test_flush_publishes_what_waits_in_the_calling_thread():
    recorded = Recorded()
    publisher = tasks.PlanPublisher(interval=60, publish=recorded)
    publisher.submit([1])
    recorded.published.wait(1.0)
    publisher.submit([2, 3])  # would wait a minute for the thread
    publisher.flush()
    assert recorded.messages == [[1], [2, 3]]


def test_with_a_broker_the_signal_goes_through_the_publisher(monkeypatch, queued_messages, settings):
    submitted = []
    monkeypatch.setattr(tasks.publisher, "submit", submitted.append)
    tasks.plan_soon([7, 8])
    assert submitted == [[7, 8]]


def test_committed_notices_go_through_their_publisher_when_a_broker_takes_the_task(queued_messages, monkeypatch):
    from notifications import apps

    submitted = []
    monkeypatch.setattr(tasks.notice_publisher, "submit", submitted.append)
    apps.plan_after_notices(sender=None, notice_ids=(5, 6))
    assert submitted == [[5, 6]]
