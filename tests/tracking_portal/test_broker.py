"""The broker transport: kombu's Redis transport with one client per channel."""

import os
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from tracking_portal import broker

REDIS_URL = os.environ.get("REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL.startswith("redis://"), reason="needs a real Redis (set REDIS_URL)")


def test_the_portal_sends_its_tasks_through_this_transport():
    from tracking_portal.celery import app

    with app.connection_for_write() as connection:
        assert isinstance(connection.default_channel, broker.Channel)


def test_one_client_per_channel_and_pool():
    with Connection(REDIS_URL, transport=broker.Transport) as connection:
        channel = connection.default_channel
        first = channel._create_client()
        assert channel._create_client() is first
        # Its pool dropped after an error, the channel makes a client of the new one.
        channel._disconnect_pools()
        second = channel._create_client()
        assert second is not first and second.connection_pool is channel.pool
        assert channel._create_client(asynchronous=True) is not second


def test_messages_go_through_and_are_acknowledged():
    name = f"test-broker-{uuid.uuid4().hex}"
    queue = Queue(name, Exchange(name), routing_key=name)
    received, tags = [], []
    with Connection(REDIS_URL, transport=broker.Transport) as connection:
        with connection.Producer() as producer:
            for n in range(3):
                producer.publish({"n": n}, exchange=queue.exchange, routing_key=name, declare=[queue])

        def on_message(body, message):
            received.append(body["n"])
            tags.append(message.delivery_tag)
            message.ack()

        with connection.Consumer(queue, callbacks=[on_message], accept=["json"]):
            while len(received) < 3:
                connection.drain_events(timeout=5)
        channel = connection.default_channel
        client = channel._create_client()
        # Acknowledged: nothing left unacknowledged or in the queue.
        assert received == [0, 1, 2]
        assert client.hmget(channel.unacked_key, tags) == [None] * 3
        assert client.llen(name) == 0
        queue(channel).delete()
