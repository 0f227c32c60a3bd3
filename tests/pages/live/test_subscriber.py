"""The process's Redis subscription (pages/live/subscriber.py)."""

import pytest
from django.conf import settings

from pages import cache as page_cache
from pages.live import subscriber

from .helpers import next_event, open_stream, run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(not settings.REDIS_URL, reason="the subscription is Redis's (set REDIS_URL)")
def test_open_pages_look_again_after_the_subscription_comes_back(shipment):
    """Messages published while the hub's subscription was down reached
    nobody; when it is back, every open stream is told to look again."""

    async def scenario():
        stream, _ = await open_stream(shipment.public_token)
        redis = page_cache.shared_redis()
        # Drop this process's hub subscription from Redis's side.
        mine = [c for c in redis.client_list(_type="pubsub") if c.get("name") == subscriber.subscriber_name()]
        assert len(mine) == 1
        redis.client_kill_filter(_id=mine[0]["id"])
        assert await next_event(stream, timeout=5) == b"event: changed\ndata: changed\n\n"
        await stream.aclose()

    run(scenario())


class Recorder:
    """A hub that writes down what the subscription tells it."""

    def __init__(self):
        self.calls = []

    def subscribed(self):
        self.calls.append("subscribed")

    def unsubscribed(self):
        self.calls.append("unsubscribed")

    def look_again(self):
        self.calls.append("look_again")

    def deliver(self, token, payload):
        self.calls.append(("deliver", token, payload))


def test_a_subscription_that_goes_silent_is_taken_as_lost(settings, monkeypatch):
    """A Redis that confirms the subscription and then never answers again
    (its connection dead without a close): the hub hears it lost within a
    ping's wait, so its copy of pages is dropped, and it subscribes again."""
    import asyncio

    monkeypatch.setattr(subscriber, "QUIET_SECONDS", 0.1)
    commands = []

    async def silent_redis(reader, writer):
        while data := await reader.read(1 << 16):
            commands.append(data)
            if b"PSUBSCRIBE" in data:
                writer.write(b"*3\r\n$10\r\npsubscribe\r\n$3\r\nx:*\r\n:1\r\n")
                await writer.drain()
            # Nothing else is ever answered, and the connection stays open.

    async def scenario():
        server = await asyncio.start_server(silent_redis, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        hub = Recorder()
        task = asyncio.get_running_loop().create_task(subscriber.hold_subscription(hub))
        try:
            for _ in range(100):
                if hub.calls.count("subscribed") >= 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            server.close()
        return hub.calls

    calls = asyncio.run(scenario())
    # Subscribed, lost at the unanswered PING, subscribed again and told
    # every open page to look again.
    assert calls[:4] == ["subscribed", "unsubscribed", "subscribed", "look_again"]
    assert any(b"PING" in data for data in commands)
