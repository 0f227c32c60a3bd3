import socket

import pytest
from django.core import mail

from notifications.transports.sms import MemorySmsTransport
from tracking_portal.celery import app as celery_app

# Servers the notification tests start listen on 127.0.0.1 in this range.
PORTS = range(8500, 8550)


def free_port(within: range = PORTS) -> int:
    for port in within:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"No free port in {within}.")


@pytest.fixture(autouse=True)
def memory_sms(settings):
    settings.SMS_BACKEND = "memory"
    MemorySmsTransport.outbox.clear()
    yield MemorySmsTransport.outbox
    MemorySmsTransport.outbox.clear()


@pytest.fixture
def eager_celery():
    """Run tasks in-process, as `make run` does without REDIS_URL, whatever
    the test run's own settings are."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


@pytest.fixture
def outbox():
    mail.outbox.clear()
    return mail.outbox
