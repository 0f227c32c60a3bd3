"""The look-up's limits: per tracking number whatever the address, and no
500 or long wait when the limiter's Redis is closed or hung."""

import socket
import threading

import pytest

from pages.lookup import FAILED_LOOKUPS_PER_NUMBER, LOOKUP_WINDOW_SECONDS
from tests.conftest import free_port_in
from tracking_portal import redis as shared_redis

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_limits")]

PORTS = range(8520, 8540)


def look_up(client, number, postcode_or_email, address):
    return client.post(
        "/track/",
        {"tracking_number": number, "postcode_or_email": postcode_or_email},
        REMOTE_ADDR=address,
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_failed_look_ups_of_one_number_are_limited_whatever_the_address(client, shipment):
    number = shipment.tracking_number
    answers = [look_up(client, number, f"X{n} 1AA", address=f"10.1.0.{n}") for n in range(1, 12)]
    assert [r.status_code for r in answers[:FAILED_LOOKUPS_PER_NUMBER]] == [200] * FAILED_LOOKUPS_PER_NUMBER
    limited = answers[FAILED_LOOKUPS_PER_NUMBER]
    assert limited.status_code == 429
    assert 0 < int(limited["Retry-After"]) <= LOOKUP_WINDOW_SECONDS
    assert "Too many attempts for this tracking number." in limited.content.decode()
    # Even the right postcode, from yet another address: the guessing stops.
    right = look_up(client, number, "SW1A 2AA", address="10.1.0.99")
    assert right.status_code == 429
    assert shipment.get_absolute_url() not in right.content.decode()
    # The number is written the way the customer types it, in any case.
    assert look_up(client, number.lower(), "SW1A 2AA", address="10.1.0.98").status_code == 429
    # Another number is not affected.
    assert look_up(client, "LM999999", "SW1A 2AA", address="10.1.0.97").status_code == 200


def test_successful_look_ups_do_not_count_against_the_number(client, shipment):
    for n in range(FAILED_LOOKUPS_PER_NUMBER + 2):
        assert look_up(client, shipment.tracking_number, "SW1A 2AA", address=f"10.2.0.{n}").status_code == 303


def test_unknown_numbers_are_limited_like_known_ones(client):
    answers = [look_up(client, "NOSUCH1", "SW1A 2AA", address=f"10.3.0.{n}").status_code for n in range(11)]
    assert answers == [200] * 10 + [429]


def test_a_brands_look_up_shares_the_numbers_limit(client, shipment, brand):
    for n in range(FAILED_LOOKUPS_PER_NUMBER):
        client.post(
            "/track/acme/",
            {"tracking_number": shipment.tracking_number, "postcode_or_email": "E1 6AN"},
            REMOTE_ADDR=f"10.4.0.{n}",
        )
    assert look_up(client, shipment.tracking_number, "SW1A 2AA", address="10.4.1.1").status_code == 429


def test_counts_are_kept_in_redis_when_configured(client, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    import redis

    look_up(client, "NOSUCH2", "SW1A 2AA", address="10.5.0.1")
    store = redis.Redis.from_url(settings.REDIS_URL)
    names = {name.decode() for name in store.keys("ratelimit:*")}
    assert any("lookup-number/NOSUCH2" in name for name in names), names
    assert any("lookup-address/10.5.0.1" in name for name in names), names


# --- Redis trouble ---------------------------------------------------------


class HungRedis:
    """A TCP listener on 127.0.0.1 that accepts connections and never
    answers, counting the connections it was asked for."""

    def __init__(self):
        self.port = free_port_in(PORTS)
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.accepted = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.listener.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def hung_redis():
    server = HungRedis()
    yield server
    server.close()


def test_an_unreachable_redis_never_makes_the_look_up_fail(client, shipment, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port_in(PORTS)}/0"  # nothing listens there
    assert look_up(client, "NOSUCH3", "SW1A 2AA", address="10.6.0.1").status_code == 200
    assert look_up(client, shipment.tracking_number, "SW1A 2AA", address="10.6.0.1").status_code == 303


def test_a_hung_redis_is_tried_once_per_back_off(client, shipment, settings, hung_redis, monkeypatch):
    settings.REDIS_URL = f"redis://127.0.0.1:{hung_redis.port}/0"
    answers = [look_up(client, "NOSUCH4", "SW1A 2AA", address="10.7.0.1").status_code for _ in range(4)]
    answers.append(look_up(client, shipment.tracking_number, "SW1A 2AA", address="10.7.0.1").status_code)
    assert answers == [200, 200, 200, 200, 303]
    # Five look-ups, three limiter calls each: one connection, the first.
    assert len(hung_redis.accepted) == 1

    shared_redis.outage_of(settings.REDIS_URL).until = 0.0  # as when the back-off has passed
    assert look_up(client, "NOSUCH4", "SW1A 2AA", address="10.7.0.1").status_code == 200
    assert look_up(client, "NOSUCH4", "SW1A 2AA", address="10.7.0.1").status_code == 200
    # The back-off over, Redis is tried again, once, and left alone again.
    assert len(hung_redis.accepted) == 2
