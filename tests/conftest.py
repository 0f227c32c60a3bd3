import contextlib
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from shipments import services
from shipments.models import Brand, EventSource
from shipments.services import NewEvent

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.fixture
def brand(db):
    return Brand.objects.create(name="Acme Parcels", slug="acme", support_email="help@acme.example")


@pytest.fixture
def other_brand(db):
    return Brand.objects.create(name="Other Co", slug="other")


@pytest.fixture
def make_shipment(brand):
    counter = iter(range(1, 10_000))

    def make(tracking_number=None, for_brand=None, **fields):
        defaults = {
            "recipient_name": "Ada Lovelace",
            "recipient_phone": "+447700900123",
            "recipient_email": "ada@example.com",
            "destination_line1": "1 Example Street",
            "destination_city": "London",
            "destination_postcode": "SW1A 2AA",
            "destination_country": "GB",
            "destination_lat": 51.5034,
            "destination_lng": -0.1276,
        }
        shipment, _ = services.create_shipment(
            brand=for_brand or brand,
            tracking_number=tracking_number or f"LM{next(counter):06d}",
            **{**defaults, **fields},
        )
        return shipment

    return make


@pytest.fixture
def shipment(make_shipment):
    return make_shipment()


def event(status, minutes=0, external_id=None, source=EventSource.API, **kwargs):
    """A NewEvent at T0 + minutes, with an external id derived from both."""
    return NewEvent(
        status=status,
        occurred_at=T0 + timedelta(minutes=minutes),
        source=source,
        external_id=external_id if external_id is not None else f"{status}-{minutes}",
        **kwargs,
    )


def free_port_in(ports: range) -> int:
    """A port in this range that nothing on 127.0.0.1 listens on now."""
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"No free port in {ports.start}-{ports.stop - 1}.")


@pytest.fixture
def fresh_limits():
    """Rate limits counted from nothing, and forgotten after the test (the
    in-process store outlives a test; Redis's is shared by the run)."""
    from shipments import limiter

    limiter.reset()
    yield
    limiter.reset()


@pytest.fixture(autouse=True)
def redis_outages_forgotten():
    """A Redis outage a test provoked (tracking_portal.redis keeps them per
    process) must not make the next test skip Redis."""
    from tracking_portal import redis as redis_factory

    redis_factory.forget_outages()
    yield
    redis_factory.forget_outages()


@contextlib.contextmanager
def uvicorn_in_thread(application, *, port: int, **config):
    """The portal under a real uvicorn in a thread of this process (so that
    it uses the test database), stopped on leaving; ``config`` goes to
    uvicorn.Config. Logging stays as the portal's settings made it."""
    import uvicorn

    options = {
        "host": "127.0.0.1",
        "lifespan": "off",
        "log_config": None,
        "log_level": "warning",
        "timeout_graceful_shutdown": 1,
        **config,
    }
    server = uvicorn.Server(uvicorn.Config(application, port=port, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def agent(brand):
    """A support agent of ``brand``: staff, a member of it, with the admin's
    permissions on both apps' models, not a superuser."""
    from tests.shipments.admin_helpers import brand_staff

    return brand_staff(brand)


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client
