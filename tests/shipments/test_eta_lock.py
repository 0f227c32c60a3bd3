"""One recompute of a route at a time (shipments.eta.claim_route): two
triggers for the same route at once, in two threads with their own
PostgreSQL connections, write the route once and notice a move once."""

import threading
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


@pytest.mark.django_db(transaction=True)
def test_two_recomputes_of_one_route_at_once_run_once(brand, van, now, monkeypatch):
    route, parcels = van
    ping(brand, now)
    eta.recompute_route(route_id=route.pk, now=now)
    # Stuck at the depot for 40 minutes: a recompute now moves every window
    # past the threshold and notices it.
    stuck = now + timedelta(minutes=40)
    ping(brand, stuck)
    inside, tried = threading.Event(), threading.Event()
    model = eta_model.estimate_route

    def first_waits_for_the_second(**kwargs):
        if not inside.is_set():
            inside.set()
            assert tried.wait(10)
        return model(**kwargs)

    monkeypatch.setattr(eta_model, "estimate_route", first_waits_for_the_second)
    first, first_out = in_thread(lambda: eta.recompute_route(route_id=route.pk, now=stuck))
    assert inside.wait(10)
    second, second_out = in_thread(lambda: eta.recompute_route(route_id=route.pk, now=stuck))
    second.join(10)
    tried.set()
    first.join(10)
    assert (first_out["value"], second_out["value"]) == (3, 0)
    assert Notice.objects.filter(kind=NoticeKind.ETA_CHANGED).count() == 3
    assert all(p.computed_at == stuck for p in fresh(parcels))


@pytest.mark.django_db(transaction=True)
def test_the_lock_ends_with_its_transaction(brand, van, now):
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
