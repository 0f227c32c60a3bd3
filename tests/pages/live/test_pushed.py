"""A tracking page's open stream sends it what changed instead of asking it
to load itself again (pages/live/stream.py): the "updates" fragment on a
change (pages.tracking.pushed_updates), the new status card alone when only
the expected times moved, the ETA's recompute after the van's pings
(pages.tracking.status_card)."""

import re
from datetime import timedelta

import pytest
import time_machine
from asgiref.sync import sync_to_async
from django.conf import settings

from pages.live import fanout
from pages.live import stream as sse
from pages.live.hub import CHANGED, FINAL, TIMES, Mailbox
from pages.tracking import pushed_updates, status_card
from shipments import services, signals
from shipments.services import NewEvent
from tests.pages.eta_van import drive, hhmm, page

from .helpers import changes_of, first_chunks, open_stream, run

pytestmark = pytest.mark.django_db(transaction=True)

STATUS_SECTION = re.compile(r'<section id="status".*?</section>', re.S)


def card_of_event(chunk: bytes, event: str = "status") -> str:
    """The HTML an SSE event carries, as the browser joins it."""
    lines = chunk.decode().split("\n")
    assert lines[0] == f"event: {event}"
    return "\n".join(line.removeprefix("data: ") for line in lines[1:] if line)


def test_the_card_is_the_pages_own_status_section(client, brand, van, frozen):
    route, shipment = van
    drive(brand, route, frozen)
    shown = STATUS_SECTION.search(page(client, shipment)).group(0)
    card = status_card(shipment.public_token, "en")
    assert STATUS_SECTION.fullmatch(card.strip()).group(0) == shown
    assert "Arriving between" in card


def test_the_card_speaks_the_language_it_is_asked_for(brand, van, frozen):
    route, shipment = van
    drive(brand, route, frozen)
    assert "Llega entre" in status_card(shipment.public_token, "es")
    assert "Arriving between" not in status_card(shipment.public_token, "de")
    # A language the portal does not speak gets no card (the page loads
    # itself again instead).
    assert status_card(shipment.public_token, "fr") is None


def test_there_is_no_card_for_a_journey_that_is_over_or_an_unknown_page(van, frozen):
    _route, shipment = van
    services.record_event(
        shipment_id=shipment.pk,
        event=NewEvent(status="delivered", occurred_at=frozen, source="api", external_id="d"),
    )
    assert status_card(shipment.public_token, "en") is None
    assert status_card("x" * 22, "en") is None


def test_the_etas_recompute_announces_times_only(brand, van, frozen):
    route, shipment = van
    drive(brand, route, frozen)
    later = frozen + timedelta(minutes=2)
    with time_machine.travel(later, tick=False):
        seen = changes_of(lambda: drive(brand, route, later, metres=2000))
    assert [(c.token, c.times_only) for c in seen] == [(shipment.public_token, True)]
    assert fanout.pages_changed(seen) == {shipment.public_token: TIMES}


def test_another_change_in_the_same_announcement_asks_for_a_full_load(van):
    _route, shipment = van
    token = shipment.public_token
    times = signals.ShipmentChange(shipment.pk, 5, token=token, old_status="out_for_delivery",
                                   status="out_for_delivery", times_only=True)  # fmt: skip
    event = signals.ShipmentChange(shipment.pk, 6, token=token, old_status="out_for_delivery",
                                   status="out_for_delivery")  # fmt: skip
    assert fanout.pages_changed([times, event]) == {token: CHANGED}
    ended = signals.ShipmentChange(shipment.pk, 7, token=token, old_status="out_for_delivery", status="delivered")
    assert fanout.pages_changed([times, ended])[token] == FINAL


def test_a_waiting_full_load_makes_the_times_unneeded():
    box = Mailbox()
    box.put(TIMES)
    box.put(TIMES)
    box.put(CHANGED)
    box.put(TIMES)
    assert box.pending == [CHANGED]


def test_the_open_page_is_sent_its_new_card(client, brand, van, frozen):
    route, shipment = van
    drive(brand, route, frozen)
    later = frozen + timedelta(minutes=2)

    async def scenario():
        opened, _ = await open_stream(shipment.public_token)
        await opened.aclose()
        first, queue = await sse.opened_state(shipment.public_token, None)
        stream = sse.stream(shipment.public_token, first, queue, "en")
        await anext(stream)
        if first == CHANGED:
            await anext(stream)
        with time_machine.travel(later, tick=False):
            await sync_to_async(drive)(brand, route, later, 2000)
        # The ping's position first, then the times it moved.
        chunk = await anext(stream)
        while chunk.startswith(b"event: position\n"):
            chunk = await anext(stream)
        await stream.aclose()
        return chunk

    chunk = run(scenario())
    shipment.refresh_from_db()
    card = card_of_event(chunk)
    assert f">{hhmm(shipment.computed_window_end)}</time>" in card
    assert f"Updated {hhmm(later)}" in card
    with time_machine.travel(later, tick=False):
        assert card.strip() == STATUS_SECTION.search(page(client, shipment)).group(0)


@pytest.mark.parametrize("query", [b"since=1", b"since=1&card=fr", b"since=1&card="], ids=["none", "unknown", "empty"])
def test_a_stream_without_a_card_language_hears_changed(brand, van, frozen, query):
    route, shipment = van
    drive(brand, route, frozen)
    assert sse.card_of(query) == ""

    async def scenario():
        first, queue = await sse.opened_state(shipment.public_token, None)
        stream = sse.stream(shipment.public_token, first, queue, sse.card_of(query))
        await anext(stream)
        if first == CHANGED:
            await anext(stream)
        queue.put(TIMES)
        chunk = await anext(stream)
        await stream.aclose()
        return chunk

    assert run(scenario()) == sse.ENCODED[CHANGED]


def test_the_bare_stream_takes_the_card_language_from_its_url(brand, van, frozen):
    route, shipment = van
    drive(brand, route, frozen)
    assert sse.card_of(b"since=3&card=es") == "es"
    chunks = run(first_chunks(shipment.public_token, b"since=&card=es", 2))
    # The opening: the stream's retry line, then (no epoch named: the page
    # may be behind) what the page would load, in Spanish, sent instead.
    assert chunks[1].startswith(b"event: page\n")
    assert b"Llega entre" in chunks[1]
    assert card_of_event(chunks[1], "page").strip() == pushed_updates(shipment.public_token, "es").strip()


def test_a_change_sends_the_fragment_the_page_would_load(client, brand, van, frozen):
    route, shipment = van
    drive(brand, route, frozen)
    token = shipment.public_token
    chunk = run(sse.page_moved(token, "en"))
    loaded = client.get(shipment.get_absolute_url(), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="refresh",
                        HTTP_ACCEPT_LANGUAGE="en")  # fmt: skip
    assert loaded.status_code == 200
    assert card_of_event(chunk, "page").strip() == loaded.content.decode().strip()
    assert 'hx-swap-oob="innerHTML"' in card_of_event(chunk, "page")


@pytest.mark.skipif(not settings.REDIS_URL, reason="the page cache needs Redis (set REDIS_URL)")
@pytest.mark.parametrize(("pushed", "language"), [(pushed_updates, "de"), (status_card, "es")], ids=["page", "card"])
def test_one_render_serves_every_open_page_of_the_link(brand, van, frozen, django_assert_num_queries, pushed, language):
    route, shipment = van
    drive(brand, route, frozen)
    first = pushed(shipment.public_token, language)
    assert first
    with django_assert_num_queries(0):
        assert pushed(shipment.public_token, language) == first


def test_a_delivered_page_loads_itself_for_its_forms(van, frozen, monkeypatch):
    _route, shipment = van
    services.record_event(
        shipment_id=shipment.pk,
        event=NewEvent(status="delivered", occurred_at=frozen, source="api", external_id="d"),
    )
    # The rating and report forms carry the visitor's CSRF token.
    assert pushed_updates(shipment.public_token, "en") is None
    assert run(sse.page_moved(shipment.public_token, "en")) == sse.ENCODED[CHANGED]
    assert run(sse.page_moved(shipment.public_token, "")) == sse.ENCODED[CHANGED]


def test_what_cannot_be_rendered_falls_back_to_changed(van, monkeypatch):
    _route, shipment = van

    def broken(token, language):
        raise RuntimeError("template gone")

    monkeypatch.setattr(sse, "status_card", broken)
    monkeypatch.setattr(sse, "pushed_updates", broken)
    assert run(sse.times_moved(shipment.public_token, "en")) == sse.ENCODED[CHANGED]
    assert run(sse.page_moved(shipment.public_token, "en")) == sse.ENCODED[CHANGED]


def test_the_page_names_its_language_for_the_card(client, van):
    _route, shipment = van
    html = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert re.search(r'sse-connect="[^"]*events/\?since=\d+&amp;card=de"', html)


def test_a_card_splits_into_data_lines():
    assert sse.encode_card("<a>\r\n<b>\r<c>\n") == b"event: status\ndata: <a>\ndata: <b>\ndata: <c>\n\n"
