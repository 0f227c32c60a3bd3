import pytest
from django.core import mail

from notifications.transports.sms import MemorySmsTransport
from tracking_portal.celery import app as celery_app

from ..conftest import free_port_in

# Servers the notification tests start listen on 127.0.0.1 in this range.
PORTS = range(8500, 8550)


def free_port() -> int:
    return free_port_in(PORTS)


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
