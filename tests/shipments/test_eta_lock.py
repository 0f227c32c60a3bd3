"""One recompute of a route at a time (shipments.eta.claim_route): two
triggers for the same route at once, in two threads with their own
PostgreSQL connections: the second waits for the first, then reads what it
wrote, so a move is noticed once and the later trigger is not lost."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction

from shipments import eta, eta_model
from shipments.models import Notice, NoticeKind
from tests.shipments import test_eta_service as service
from tests.shipments.test_eta_service import fresh, ping

# The van of the service's tests, its clock and its forgotten history.
van, now, no_history = service.van, service.now, service.no_history

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's")


@pytest.fixture(autouse=True)
def changes_told(settings):
    settings.ETA_CHANGED_MINUTES = 15


def in_thread(target):
    out = {}

    def run():
        try:
            out["value"] = target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def waiting_for_the_route(route_id: int) -> bool:
    """True once another connection waits for the route's lock."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid = %s AND objid = %s",
                [eta.ROUTE_LOCK_NAMESPACE, route_id],
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.02)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_second_recompute_waits_for_the_first_and_notices_nothing_twice(brand, van, now, monkeypatch):
    route, parcels = van
    ping(brand, now)
    eta.recompute_route(route_id=route.pk, now=now)
    # Stuck at the depot for 40 minutes: a recompute now moves every window
    # past the threshold and notices it.
    stuck = now + timedelta(minutes=40)
    ping(brand, stuck)
    inside, second_waits = threading.Event(), threading.Event()
    model = eta_model.estimate_route
    order = []

    def first_holds_the_route_until_the_second_waits(**kwargs):
        if not inside.is_set():
            inside.set()
            assert second_waits.wait(10)
        order.append(threading.get_ident())
        return model(**kwargs)

    monkeypatch.setattr(eta_model, "estimate_route", first_holds_the_route_until_the_second_waits)
    first, first_out = in_thread(lambda: eta.recompute_route(route_id=route.pk, now=stuck))
    assert inside.wait(10)
    second, second_out = in_thread(lambda: eta.recompute_route(route_id=route.pk, now=stuck))
    assert waiting_for_the_route(route.pk)
    second_waits.set()
    first.join(10)
    second.join(10)
    # Both ran, one after the other; the second counted its moves from the
    # windows the first told, so the 40 minutes were noticed once a parcel.
    assert (first_out["value"], second_out["value"]) == (3, 3)
    assert len(order) == 2 and order[0] != order[1]
    assert Notice.objects.filter(kind=NoticeKind.ETA_CHANGED).count() == 3
    assert all(p.computed_at == stuck for p in fresh(parcels))


@pytest.mark.django_db(transaction=True)
def test_a_route_held_past_the_wait_is_skipped_and_the_lock_ends_with_its_transaction(brand, van, now, monkeypatch):
    monkeypatch.setattr(eta, "LOCK_WAIT_SECONDS", 0.2)
    route, _ = van
    ping(brand, now)
    holder_has_it, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            claimed = eta.claim_route(route.pk)
            holder_has_it.set()
            release.wait(10)
            return claimed

    holder, held = in_thread(hold)
    assert holder_has_it.wait(10)
    assert eta.recompute_route(route_id=route.pk, now=now) == 0
    # Another route is not held up by this one's lock.
    with transaction.atomic():
        assert eta.claim_route(route.pk + 1)
    release.set()
    holder.join(10)
    assert held["value"] is True
    assert eta.recompute_route(route_id=route.pk, now=now) == 3
