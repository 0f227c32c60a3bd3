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
