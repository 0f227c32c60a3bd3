"""The hub (pages/live/hub.py): a message reaches the streams of its token
only."""

import pytest
from asgiref.sync import sync_to_async

from shipments import services
from tests.conftest import event

from .helpers import next_event, open_stream, run

pytestmark = pytest.mark.django_db(transaction=True)


def test_only_the_changed_shipments_streams_hear_of_it(make_shipment):
    mine, other = make_shipment(), make_shipment()

    async def scenario():
        mine_stream, _ = await open_stream(mine.public_token)
        other_stream, _ = await open_stream(other.public_token)
        await sync_to_async(services.record_event)(shipment_id=mine.pk, event=event("in_transit"))
        assert b"changed" in await next_event(mine_stream)
        with pytest.raises(TimeoutError):
            await next_event(other_stream, timeout=0.3)
        await mine_stream.aclose()
        await other_stream.aclose()

    run(scenario())
