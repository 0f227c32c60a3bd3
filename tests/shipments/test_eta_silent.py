"""A van that stopped pinging (shipments.eta, beat's refresh_silent_etas):
its route is recomputed from now with the windows widened and told to
nobody, then withdrawn; the page says the position is old, then shows the
brand's promise; a ping again estimates as before, told once."""

from datetime import timedelta

import pytest
import time_machine

from shipments import eta
from shipments.models import Notice, NoticeKind
from shipments.tasks import refresh_silent_etas_task
from tests.shipments import test_eta_service as service
from tests.shipments.test_eta_service import fresh, ping

van, now, no_history = service.van, service.now, service.no_history


@pytest.fixture(autouse=True)
def limits(settings):
    settings.ETA_CHANGED_MINUTES = 15
    settings.ETA_STALE_POSITION_SECONDS = 300
    settings.ETA_WITHDRAW_POSITION_SECONDS = 1800


def beat_at(moment) -> int:
    with time_machine.travel(moment, tick=False):
        return refresh_silent_etas_task()


def test_a_silent_vans_windows_widen_then_go_and_nobody_is_told(brand, van, now):
    route, parcels = van
    ping(brand, now)
    eta.recompute_route(route_id=route.pk, now=now)
    first = fresh(parcels)
    # Pinging a minute ago: not silent, beat leaves the route alone.
    assert beat_at(now + timedelta(minutes=1)) == 0
    assert [p.computed_at for p in fresh(parcels)] == [now] * 3
    # Seven minutes unheard of: the window ends seven minutes later (the
    # van stood there all along) and starts where it did (it drove on).
    quiet = now + timedelta(minutes=7)
    assert beat_at(quiet) == 1
    for before, after in zip(first, fresh(parcels), strict=True):
        assert after.computed_window_end == before.computed_window_end + timedelta(minutes=7)
        assert after.computed_window_start == max(quiet, before.computed_window_start)
    # Twenty minutes unheard of: from now, a window as late as the van
    # standing there all along and as early as it having driven on.
    later = now + timedelta(minutes=20)
    assert beat_at(later) == 1
    silent = fresh(parcels)
    for before, after in zip(first, silent, strict=True):
        assert after.computed_from == now
        assert after.computed_window_end >= before.computed_window_end + timedelta(minutes=19)
        # Twenty minutes' driving reaches any of the three doors.
        assert after.computed_window_start == later
    # The window moved by more than the threshold; the clock moved it, not news.
    assert not Notice.objects.filter(kind=NoticeKind.ETA_CHANGED).exists()
    assert [(p.eta_told_start, p.eta_told_end) for p in silent] == [(p.eta_told_start, p.eta_told_end) for p in first]
    # Past the withdraw limit: no estimate, and beat has nothing more to do.
    assert beat_at(now + timedelta(minutes=31)) == 1
    assert all(p.computed_eta is None and p.computed_window_end is None for p in fresh(parcels))
    assert beat_at(now + timedelta(minutes=32)) == 0
    assert eta.best(fresh(parcels)[0], now + timedelta(minutes=32)).source == "brand"
    # Heard from again, stuck where it was: told once, against what was told.
    back = now + timedelta(minutes=40)
    ping(brand, back)
    eta.recompute_route(route_id=route.pk, now=back)
    eta.recompute_route(route_id=route.pk, now=back + timedelta(seconds=30))
    assert Notice.objects.filter(kind=NoticeKind.ETA_CHANGED).count() == 3
    assert all(p.computed_from == back for p in fresh(parcels))
