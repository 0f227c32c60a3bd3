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


def test_a_waiting_position_is_replaced_by_the_newer_one():
    from datetime import UTC, datetime

    from pages.live.hub import CHANGED, Mailbox, position_message
    from pages.live.stream import encode

    box = Mailbox()
    older = position_message(51.5, -0.1, datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    newer = position_message(51.6, -0.2, datetime(2026, 11, 26, 9, 1, tzinfo=UTC))
    for payload in (older, CHANGED, newer):
        box.put(payload)
    assert box.pending == [CHANGED, newer]
    assert encode(newer) == b'event: position\ndata: {"lat":51.6,"lng":-0.2,"at":"2026-11-26T09:01:00+00:00"}\n\n'
