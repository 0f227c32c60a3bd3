"""The Celery broker transport: kombu's Redis transport, with one redis-py
client per channel instead of one per command.

kombu builds a new redis-py client for every command it sends outside its
event loop (each published message, and each delivered message's
bookkeeping and acknowledgement), and building one copies redis-py's table
of some 170 response callbacks. A client over a connection pool is safe to
share between threads (each command checks a connection out of the pool),
so one per channel and pool serves them all, made by the one Redis client
factory (tracking_portal.redis) over kombu's own pool.

kombu offers no public way to choose how a channel makes its clients (its
``Client``, ``_get_client`` and ``_create_client`` are all private), so this
overrides ``_create_client``; tests/tracking_portal/test_broker.py notices
if a kombu upgrade changes it.
"""

from kombu.transport import redis

from . import redis as redis_factory


class Channel(redis.Channel):
    _shared_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        client = self._shared_client
        # kombu drops its pool on errors and makes a new one: a client of the
        # old pool is not reused.
        if client is None or client.connection_pool is not pool:
            client = self._shared_client = redis_factory.client_over(pool, client_class=self.Client)
        return client


class Transport(redis.Transport):
    Channel = Channel
