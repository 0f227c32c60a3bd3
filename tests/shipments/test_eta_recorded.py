"""``eta_backtest`` replays what the portal itself recorded: a small
simulated day sent through the API as a brand and its drivers' phones
would send it (shipments, the route, pings in batches as they come,
out-for-delivery and delivered scans), the visits found by the portal's
own follower from those pings, then backtested."""

import datetime as dt
import io

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command

from shipments import eta_history
from shipments.demo_day import World
from shipments.eta_scoring import backtest, score
from shipments.models import Driver

FIRST = dt.date(2026, 11, 2)


@pytest.fixture(autouse=True)
def forgotten():
    eta_history.forget()
    cache.clear()
    yield
    eta_history.forget()
    cache.clear()


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def send_day(api, day) -> None:
    """The day as the API hears it, each request at the moment it would be made."""
    stops = sorted(day.stops, key=lambda s: s.sequence)
    numbers = [f"{day.driver}-{day.day:%m%d}-{s.stop_id}" for s in stops]
    evening = dt.datetime.combine(day.day, dt.time(7, 0), dt.UTC) - dt.timedelta(hours=12)
    with time_machine.travel(evening, tick=False):
        for number, stop in zip(numbers, stops, strict=True):
            response = api.post(
                "/shipments",
                {
                    "tracking_number": number,
                    "recipient": {"name": "Ada", "timezone": "Europe/London"},
                    "destination": {
                        "city": "London",
                        "postcode": "SW1A 2AA",
                        "country": "GB",
                        "lat": stop.door.lat,
                        "lng": stop.door.lng,
                    },
                    "promised_window": {"start": iso(stop.promised[0]), "end": iso(stop.promised[1])},
                },
            )
            assert response.status_code == 201, response.content
        response = api.post("/routes", {"driver_ref": day.driver, "date": day.day.isoformat(), "stops": numbers})
        assert response.status_code == 200, response.content
    loading = day.pings[0][0] - dt.timedelta(minutes=5)
    with time_machine.travel(loading, tick=False):
        events = [
            {"tracking_number": n, "status": "out_for_delivery", "occurred_at": iso(loading), "external_id": f"o-{n}"}
            for n in numbers
        ]
        assert api.post("/events", {"events": events}).status_code == 200
    scans = sorted((s.scanned_at, n) for n, s in zip(numbers, stops, strict=True) if s.scanned_at)
    pings = list(day.pings)
    batch: list = []

    def send_pings():
        if batch:
            with time_machine.travel(batch[-1][0] + dt.timedelta(seconds=1), tick=False):
                body = {
                    "driver_ref": day.driver,
                    "pings": [{"lat": p.lat, "lng": p.lng, "recorded_at": iso(t)} for t, p in batch],
                }
                response = api.post("/locations", body)
                assert response.status_code == 200, response.content
            batch.clear()

    for moment, point in pings:
        while scans and scans[0][0] <= moment:
            send_pings()
            at, number = scans.pop(0)
            with time_machine.travel(at + dt.timedelta(seconds=2), tick=False):
                event = {"tracking_number": number, "status": "delivered", "occurred_at": iso(at)}
                response = api.post(
                    "/events", {"events": [{**event, "source": "driver", "external_id": f"d-{number}"}]}
                )
                assert response.json()["results"][0]["result"] == "accepted", response.content
        batch.append((moment, point))
        # A phone sends what it has about every half minute.
        if (batch[-1][0] - batch[0][0]).total_seconds() >= 30:
            send_pings()
    send_pings()


def test_the_backtest_replays_days_the_portal_recorded_through_its_api(api, brand, settings):
    settings.ETA_DEBOUNCE_SECONDS = 0
    brand.default_timezone = "Europe/London"
    brand.save(update_fields=["default_timezone"])
    simulated = World(seed=5, drivers=1, stops=(7, 8)).days(FIRST, 3)
    for day in simulated:
        send_day(api, day)
    with time_machine.travel(dt.datetime(2026, 11, 5, 12, 0, tzinfo=dt.UTC), tick=False):
        recorded = eta_history.recorded_days(
            driver_ids=Driver.objects.filter(brand=brand).values_list("pk", flat=True),
            since=FIRST,
            until=FIRST + dt.timedelta(days=3),
            tz=eta_history.brand_tz(brand),
        )
        out = io.StringIO()
        call_command("eta_backtest", "--brand", brand.slug, stdout=out)
    assert [(d.day, len(d.stops)) for d in recorded] == [(d.day, len(d.stops)) for d in simulated]
    for got, truth in zip(recorded, simulated, strict=True):
        # Every ping, once: the simulator's third day has two at one moment,
        # which the portal stores once (a ping is its driver and its time).
        assert sorted({t for t, _ in got.pings}) == sorted({t for t, _ in truth.pings})
        assert len(got.pings) == len({t for t, _ in truth.pings})
        by_id = {s.sequence: s for s in truth.stops}
        for stop in got.stops:
            real = by_id[stop.sequence]
            assert stop.scanned_at == real.scanned_at
            # The portal's follower saw the van arrive from the pings alone.
            assert stop.arrived_at is not None
            assert abs((stop.arrived_at - real.arrived_at).total_seconds()) <= 90, (stop, real)
    cells = score(backtest(recorded))
    assert cells[("model", "1")].count > 0
    assert cells[("model", "1")].mae_min < 5
    text = out.getvalue()
    assert f"Recorded: {brand.slug}, 3 driver-days" in text
    assert "| 1 | model |" in text and "| 1 | promised |" in text and "Fair comparison" in text
