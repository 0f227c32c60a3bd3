"""Customers' messages and brands' webhooks have the default queue to
themselves; the work behind the pages goes to "background" (settings'
CELERY_TASK_ROUTES), and a worker started without -Q takes both."""

import pytest

from tracking_portal.celery import app


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


@pytest.mark.parametrize("task", ["notifications.plan", "notifications.send", "notifications.plan_notices",
                                  "notifications.sweep"])  # fmt: skip
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


def test_every_task_is_routed_to_a_queue_a_plain_worker_takes():
    # A worker with no -Q consumes every queue of CELERY_TASK_QUEUES.
    consumed = {queue.name for queue in app.conf.task_queues}
    app.loader.import_default_modules()
    ours = [name for name in app.tasks if name.split(".")[0] in {"shipments", "notifications", "analytics"}]
    assert len(ours) >= 14
    assert {queue_of(name) for name in ours} <= consumed == {"celery", "background"}
