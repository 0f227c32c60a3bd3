"""The Celery broker transport: kombu's Redis transport, with one redis-py
client per channel instead of one per command.

kombu builds a new ``redis.Redis`` for every command it sends outside its
event loop (each published message, and each delivered message's
bookkeeping and acknowledgement), and building one copies redis-py's table
of some 170 response callbacks. A client over a connection pool is safe to
share between threads (each command checks a connection out of the pool),
so one per channel and pool serves them all.
"""

from kombu.transport import redis


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
            client = self._shared_client = super()._create_client()
        return client


class Transport(redis.Transport):
    Channel = Channel
