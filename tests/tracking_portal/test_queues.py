"""Customers' messages and brands' webhooks have the default queue to
themselves, the notices' messages wait in "notices", the emails left for
later in "later", the work behind the pages goes to "background"
(settings' CELERY_TASK_ROUTES), and a worker started without -Q takes all
four. A worker takes from the first of its
queues that has a task."""

import uuid
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Consumer, Exchange, Producer, Queue

from tracking_portal.celery import app


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


@pytest.mark.parametrize("task", ["notifications.plan", "notifications.send", "notifications.sweep"])
def test_messages_go_to_the_default_queue(task):
    assert queue_of(task) == app.conf.task_default_queue == "celery"


BACKGROUND = [
    "shipments.recompute_route_eta",
    "shipments.recompute_driver_eta",
    "shipments.evaluate_changed_alerts",
    "shipments.import_csv",
    "analytics.refresh",
]


@pytest.mark.parametrize("task", BACKGROUND)
def test_the_work_behind_the_pages_goes_to_background(task):
    assert queue_of(task) == "background"


def test_the_notices_and_the_emails_left_for_later_wait_in_queues_of_their_own():
    assert (queue_of("notifications.plan_notices"), queue_of("notifications.send_later")) == ("notices", "later")


def test_the_procfiles_messages_worker_takes_the_status_changes_then_the_notices_then_the_emails():
    procfile = (Path(settings.BASE_DIR) / "Procfile").read_text()
    [worker] = [line for line in procfile.splitlines() if line.startswith("worker:")]
    assert " -Q celery,notices,later " in worker


def test_every_task_is_routed_to_a_queue_a_plain_worker_takes():
    # A worker with no -Q consumes every queue of CELERY_TASK_QUEUES.
    consumed = {queue.name for queue in app.conf.task_queues}
    app.loader.import_default_modules()
    ours = [name for name in app.tasks if name.split(".")[0] in {"shipments", "notifications", "analytics"}]
    assert len(ours) >= 14
    assert {queue_of(name) for name in ours} <= consumed == {"celery", "notices", "later", "background"}


@pytest.mark.skipif(not settings.REDIS_URL, reason="the order is the Redis transport's (set REDIS_URL)")
def test_a_worker_takes_from_its_first_queue_while_it_has_tasks():
    # Taken in turn (kombu's default), the second queue's task would come
    # second; in order of priority it waits until the first is empty.
    first, second = (f"test-order-{uuid.uuid4().hex[:8]}-{n}" for n in (1, 2))
    exchange = Exchange("test-order", type="direct")
    queues = [Queue(name, exchange, routing_key=name) for name in (first, second)]
    taken = []
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        producer = Producer(channel, exchange)
        for queue in queues:
            queue(channel).declare()
        try:
            producer.publish("b1", routing_key=second)
            producer.publish("a1", routing_key=first)
            producer.publish("a2", routing_key=first)

            def take(body, message):
                taken.append(body)
                message.ack()

            with Consumer(channel, queues, callbacks=[take]):
                while len(taken) < 3:
                    connection.drain_events(timeout=5)
        finally:
            for queue in queues:
                queue(channel).delete()
    assert taken == ["a1", "a2", "b1"]


@pytest.mark.skipif(not settings.REDIS_URL, reason="delivery into queues is the Redis transport's (set REDIS_URL)")
def test_a_task_lands_in_its_own_queue_and_no_other():
    names = [queue.name for queue in app.conf.task_queues]
    sent = {
        "celery": "notifications.send",
        "notices": "notifications.plan_notices",
        "later": "notifications.send_later",
        "background": "analytics.refresh",
    }

    def sizes(channel) -> dict[str, int]:
        return {name: Queue(name).bind(channel).queue_declare().message_count for name in names}

    app.control.purge()
    try:
        with app.connection_for_write() as connection:
            for queue in app.amqp.queues.values():  # as the workers do when they start
                queue.bind(connection.default_channel).declare()
            for queue, task in sent.items():
                app.send_task(task, args=[[0]], connection=connection)
                assert sizes(connection.default_channel) == {name: int(name == queue) for name in names}
                app.control.purge()
    finally:
        app.control.purge()
