"""What announces changes (pages/live/receivers.py)."""

import pytest

from pages.live import receivers
from shipments import services
from shipments.statuses import Status
from tests.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failing_announcement_never_fails_the_write(shipment, monkeypatch, caplog):
    # The edge of the world here is Redis (or the hub's loop) going away.
    def broken(messages, **kwargs):
        raise ConnectionError("bus is down")

    monkeypatch.setattr(receivers, "publish", broken)
    recorded = services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    assert recorded.created
    shipment.refresh_from_db()
    assert shipment.status == Status.IN_TRANSIT
    assert "could not announce" in caplog.text
