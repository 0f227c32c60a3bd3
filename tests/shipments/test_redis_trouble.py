"""Redis in trouble on the event path (shipments/redis_factory.py and its
users): refused or hung, an event POST is recorded and answered, and after
the first failure Redis is left alone for the back-off, counted in
connection attempts on a local server that accepts and never answers."""

import socket
import threading
from datetime import UTC, datetime

import pytest

from pages import cache as page_cache
from shipments import limiter
from shipments.models import StatusChange, TrackingEvent
from tracking_portal import counters
from tracking_portal import redis as redis_factory
from tracking_portal.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)

# The back-off the tests run under: long enough that no slow run outlives it.
BACKOFF_SECONDS = 120


class HungRedis:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self):
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def hung():
    server = HungRedis()
    yield server
    server.close()


@pytest.fixture
def closed_port():
    # Bound but not listening: connections are refused, and no one else
    # can take the port meanwhile.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


@pytest.fixture
def redis_at(settings, monkeypatch):
    """Point the portal's Redis clients at a URL, from scratch."""
    settings.REDIS_OUTAGE_BACKOFF_SECONDS = BACKOFF_SECONDS

    def point(url: str) -> str:
        settings.REDIS_URL = url
        # Page views other tests counted would otherwise be sent to this
        # URL by the counters' flusher thread: connections nobody here made.
        counters.forget_local()
        monkeypatch.setattr(redis_factory, "_shared", None)
        limiter.reset()
        redis_factory.forget_outages()
        return url

    yield point
    redis_factory.forget_outages()
    limiter.reset()


def post_event(api, tracking_number: str, n: int):
    occurred = datetime(2026, 11, 26, 8, n, tzinfo=UTC).isoformat()
    status = "in_transit" if n % 2 == 0 else "out_for_delivery"
    item = {"tracking_number": tracking_number, "status": status, "occurred_at": occurred, "external_id": f"s-{n}"}
    return api.post("/events", {"events": [item]})


def test_with_redis_hung_events_are_recorded_and_redis_is_tried_once_per_back_off(
    api, client, shipment, hung, redis_at
):
    redis_at(f"redis://127.0.0.1:{hung.port}/0")
    first = post_event(api, shipment.tracking_number, 0)
    assert first.status_code == 200 and first.json()["accepted"] == 1
    tried = len(hung.accepted)
    # The rate limiter and the announcement each found it hung.
    assert tried >= 1

    for n in range(1, 5):
        answer = post_event(api, shipment.tracking_number, n)
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
    # The page, rendered without its cache, doesn't try either.
    page = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert len(hung.accepted) == tried

    assert TrackingEvent.objects.filter(shipment=shipment).count() == 5
    # Each status change is in the outbox for the sweep.
    assert StatusChange.objects.filter(shipment=shipment).count() == 5


def test_with_redis_refusing_events_are_recorded(api, shipment, closed_port, redis_at):
    url = redis_at(f"redis://127.0.0.1:{closed_port}/0")
    for n in range(3):
        answer = post_event(api, shipment.tracking_number, n)
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 3
    assert redis_factory.outage_of(url).active


def test_the_back_off_ends(shipment, hung, redis_at, settings):
    url = redis_at(f"redis://127.0.0.1:{hung.port}/0")
    assert page_cache.lookup(shipment.public_token, "page:~en").html is None
    assert len(hung.accepted) == 1
    page_cache.lookup(shipment.public_token, "page:~en")
    assert len(hung.accepted) == 1
    redis_factory.outage_of(url).until = 0.0  # as when the back-off has passed
    page_cache.lookup(shipment.public_token, "page:~en")
    assert len(hung.accepted) == 2


def point_broker_at(url: str) -> None:
    celery_app.conf.broker_url = url
    celery_app.conf.broker_write_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_a_hung_broker_is_waited_for_once_per_back_off(hung, redis_at):
    """Publishing planning (notifications.tasks): bounded by the broker's
    socket timeout, then skipped while the outage lasts; the outbox keeps
    the work for the sweep."""
    from notifications import tasks

    redis_at("")
    saved = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    results = []
    try:
        point_broker_at(f"redis://127.0.0.1:{hung.port}/0")
        celery_app.conf.task_always_eager = False
        publishing = threading.Thread(target=lambda: results.append(tasks.enqueue_plans([1, 2])), daemon=True)
        publishing.start()
        publishing.join(60)  # a failure guard: without a socket timeout it never returns
        assert results == [0], "the publish waited on the hung broker without end"
        tried = len(hung.accepted)
        assert tried >= 1
        assert tasks.enqueue_plans([3]) == 0
        assert tasks.enqueue_sends([4, 5]) == 0
        assert len(hung.accepted) == tried
    finally:
        point_broker_at(saved[0])
        celery_app.conf.task_always_eager = saved[1]
