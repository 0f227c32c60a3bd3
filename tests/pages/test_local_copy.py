"""The process-local copy of hot pages (pages/local_copy.py): its bounds and
expiry on their own, then under a real uvicorn with the hub's subscription,
through the real write path."""

import asyncio
import contextlib
import threading
import time

import pytest
import time_machine
from django.conf import settings

from pages import cache as page_cache
from pages import fast
from pages.live import subscriber
from pages.live.hub import Hub, hub
from pages.local_copy import Entry, LocalCopy, valid_until
from shipments import services
from tests.conftest import event
from tests.tracking_portal.asgi_helpers import exchange, head, serve
from tracking_portal import asgi


def entry(size=10, until=float("inf")):
    return Entry(object(), size, until)


def test_the_copy_is_bounded_by_count_least_recently_served_first():
    copy = LocalCopy(max_entries=2, max_bytes=1000)
    copy.put("a", "tp:page:a:page:~en", entry())
    copy.put("b", "tp:page:b:page:~en", entry())
    assert copy.get("tp:page:a:page:~en", 0) is not None  # a served: b is now the oldest
    copy.put("c", "tp:page:c:page:~en", entry())
    assert len(copy) == 2
    assert copy.get("tp:page:b:page:~en", 0) is None
    assert copy.get("tp:page:a:page:~en", 0) is not None
    assert copy.get("tp:page:c:page:~en", 0) is not None


def test_the_copy_is_bounded_by_bytes():
    copy = LocalCopy(max_entries=100, max_bytes=250)
    for name in "abc":
        copy.put(name, f"tp:page:{name}:page:~en", entry(100))
    assert len(copy) == 2 and copy.bytes == 200
    assert copy.get("tp:page:a:page:~en", 0) is None
    copy.put("big", "tp:page:big:page:~en", entry(251))  # larger than the whole copy: not kept
    assert copy.get("tp:page:big:page:~en", 0) is None and copy.bytes == 200


def test_dropping_a_token_drops_each_of_its_variants_only():
    copy = LocalCopy()
    copy.put("a", "tp:page:a:page:~en", entry())
    copy.put("a", "tp:page:a:embed-page:de", entry())
    copy.put("b", "tp:page:b:page:~en", entry())
    copy.drop("a")
    copy.drop("never-kept")
    assert copy.get("tp:page:a:page:~en", 0) is None
    assert copy.get("tp:page:a:embed-page:de", 0) is None
    assert copy.get("tp:page:b:page:~en", 0) is not None
    assert copy.bytes == 10


def test_an_entry_ends_at_its_own_expiry():
    copy = LocalCopy()
    copy.put("a", "k", entry(until=100.0))
    assert copy.get("k", 99.9) is not None
    assert copy.get("k", 100.0) is None
    assert len(copy) == 0 and copy.bytes == 0


def test_an_entry_lives_no_longer_than_the_page_nor_the_redis_key():
    assert valid_until(0.0, 5000, now=1000.0) == 1005.0  # the key's TTL alone
    assert valid_until(1003.0, 5000, now=1000.0) == 1003.0  # the page ends first
    assert valid_until(1009.0, 5000, now=1000.0) == 1005.0  # the key ends first
    assert valid_until(1009.0, -1, now=1000.0) == 1000.0  # no TTL known: not kept
    assert valid_until(1009.0, -2, now=1000.0) == 1000.0  # key gone


needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="the copy follows Redis's subscription")


@pytest.fixture(scope="module")
def server():
    with serve(asgi.application) as port:
        yield port


@pytest.fixture
def port(server, transactional_db, settings):
    settings.ALLOWED_HOSTS = ["tracking.example.com"]
    return server


def fetch(port, path):
    answer = exchange(
        port, head("GET", path, port, "Connection: close", "Accept-Language: en", host="tracking.example.com")
    )
    return answer


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def key_of(shipment):
    return page_cache.page_key(shipment.public_token, "page:~en")


@pytest.fixture
def warm(port, shipment, monkeypatch):
    """The shipment's page in Redis and in the server's copy, with the
    hub's subscription held; the views answered here, by token."""
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    served = []
    monkeypatch.setattr("pages.fast.count_view_of", served.append)
    assert fetch(port, shipment.get_absolute_url()).status == 200  # rendered by Django, stored in Redis
    assert wait_for(lambda: fetch(port, shipment.get_absolute_url()) and hub.listening.is_set())
    assert fetch(port, shipment.get_absolute_url()).status == 200
    assert wait_for(lambda: hub.pages.get(key_of(shipment), time.time()) is not None)
    served.clear()
    return served


@needs_redis
def test_a_hot_page_is_served_from_the_copy_without_redis(port, shipment, warm):
    page_cache.shared_redis().delete(key_of(shipment))  # gone from Redis, no message
    answer = fetch(port, shipment.get_absolute_url())
    assert answer.status == 200 and b"In transit" in answer.body
    assert warm == [shipment.public_token]  # answered before Django's handler


@needs_redis
def test_a_change_through_the_write_path_is_never_served_from_the_copy(port, shipment, warm):
    words = {"out_for_delivery": b"<title>Out for delivery", "exception": b"<title>Needs attention"}
    for minutes, status in enumerate(words, start=1):
        old = hub.pages.get(key_of(shipment), time.time())
        assert old is not None and words[status] not in b"".join(old.page.parts)  # the old page is in the copy
        services.record_event(shipment_id=shipment.pk, event=event(status, minutes))
        # No waiting: the change's message was published before
        # record_event returned, so it reaches the server before this request.
        answer = fetch(port, shipment.get_absolute_url())
        assert answer.status == 200
        assert words[status] in answer.body, status
        fetch(port, shipment.get_absolute_url())  # the new page, copied


@needs_redis
def test_a_lost_subscription_empties_the_copy(port, shipment, warm):
    redis = page_cache.shared_redis()
    mine = [c for c in redis.client_list(_type="pubsub") if c.get("name") == subscriber.subscriber_name()]
    assert len(mine) == 1
    redis.client_kill_filter(_id=mine[0]["id"])
    assert wait_for(lambda: len(hub.pages) == 0)
    # Once subscribed again, the copy fills again.
    assert wait_for(lambda: hub.listening.is_set(), seconds=10)
    fetch(port, shipment.get_absolute_url())
    assert hub.pages.get(key_of(shipment), time.time()) is not None


@needs_redis
def test_nothing_is_copied_before_the_subscription_is_established(port, shipment, warm):
    hub.unsubscribed()  # as the subscriber says on losing it
    try:
        assert fetch(port, shipment.get_absolute_url()).status == 200
        assert len(hub.pages) == 0
        assert warm == [shipment.public_token]  # still answered here, from Redis
    finally:
        hub.subscribed()


@needs_redis
def test_the_copy_holds_the_pages_own_expiry(port, shipment, warm, monkeypatch):
    # A page showing the driver is kept page_cache.POSITION_MAX_AGE_SECONDS.
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 1))
    fetch(port, shipment.get_absolute_url())  # rendered and stored
    fetch(port, shipment.get_absolute_url())  # copied
    assert hub.pages.get(key_of(shipment), time.time()) is not None
    rendered = []
    render = fast.render_cold_page
    monkeypatch.setattr(fast, "render_cold_page", lambda token, *how: rendered.append(token) or render(token, *how))
    with time_machine.travel(time.time() + page_cache.POSITION_MAX_AGE_SECONDS + 1, tick=True):
        page_cache.shared_redis().delete(key_of(shipment))  # nor is Redis asked again for it
        answer = fetch(port, shipment.get_absolute_url())
    assert answer.status == 200
    # Past its expiry: rendered afresh, not served from the copy.
    assert rendered == [shipment.public_token]


@needs_redis
def test_the_copy_holds_the_redis_keys_expiry(port, shipment, warm):
    redis = page_cache.shared_redis()
    hub.pages.drop(shipment.public_token)
    redis.pexpire(key_of(shipment), 2000)
    fetch(port, shipment.get_absolute_url())  # copied, with the key's 2 s left
    assert hub.pages.get(key_of(shipment), time.time()) is not None
    assert hub.pages.get(key_of(shipment), time.time() + 2.5) is None


@needs_redis
def test_each_process_subscription_drops_its_own_copy(port, shipment, warm):
    """Another web process has a hub (and a copy) of its own, with its own
    subscription: a change reaches both."""
    other = Hub()
    ready, done = threading.Event(), threading.Event()
    loop = asyncio.new_event_loop()

    async def hold():
        other.subscribe()
        await other.listening.wait()
        other.pages.put(shipment.public_token, key_of(shipment), Entry(object(), 3, float("inf")))
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.02)
        other._listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await other._listener

    thread = threading.Thread(target=loop.run_until_complete, args=(hold(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(5)
        assert hub.pages.get(key_of(shipment), time.time()) is not None
        services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 1))
        assert wait_for(lambda: len(other.pages) == 0)
        assert wait_for(lambda: hub.pages.get(key_of(shipment), time.time()) is None)
    finally:
        done.set()
        thread.join(5)
