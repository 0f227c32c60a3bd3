"""The routing-server adapter: OSRM's and Valhalla's answers read as legs,
and every kind of trouble falling back to the straight line."""

import contextlib
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from shipments import eta_travel
from shipments.eta_model import DEFAULT_LEARNED, Point, estimate_route
from shipments.eta_travel import RouterError, RouterTravel, travel_from_settings
from tests.conftest import free_port_in

AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
HERE = Point(51.5, -0.12)
DOORS = [(1, Point(51.51, -0.12)), (2, Point(51.52, -0.11))]
LEGS = [(HERE, DOORS[0][1]), (DOORS[0][1], DOORS[1][1])]
PORTS = range(8480, 8500)


def osrm_answer(*durations, code="Ok"):
    return {"code": code, "routes": [{"legs": [{"duration": d, "distance": d * 8} for d in durations]}]}


def router(handler, kind="osrm") -> tuple[RouterTravel, list[httpx.Request]]:
    seen = []

    def answer(request):
        seen.append(request)
        return handler(request)

    return RouterTravel(url="http://router.internal:5000/", kind=kind, transport=httpx.MockTransport(answer)), seen


def test_osrm_legs():
    travel, seen = router(lambda r: httpx.Response(200, json=osrm_answer(400.0, 250.5)))
    assert travel.leg_seconds(LEGS, AT, DEFAULT_LEARNED) == [400.0, 250.5]
    [request] = seen
    assert request.url.host == "router.internal"
    assert request.url.path == "/route/v1/driving/-0.120000,51.500000;-0.120000,51.510000;-0.110000,51.520000"
    assert request.url.params["overview"] == "false"


def test_valhalla_legs():
    answer = {"trip": {"legs": [{"summary": {"time": 300.0}}, {"summary": {"time": 120.0}}]}}
    travel, seen = router(lambda r: httpx.Response(200, json=answer), kind="valhalla")
    assert travel.leg_seconds(LEGS, AT, DEFAULT_LEARNED) == [300.0, 120.0]
    body = json.loads(seen[0].content)
    assert body["costing"] == "auto"
    assert body["locations"][0] == {"lat": 51.5, "lon": -0.12}


def test_the_model_takes_the_routers_legs():
    travel, _ = router(lambda r: httpx.Response(200, json=osrm_answer(400.0, 250.0)))
    estimates = estimate_route(origin=HERE, at=AT, stops=DOORS, learned=DEFAULT_LEARNED, travel=travel)
    assert [(e.eta - AT).total_seconds() for e in estimates] == [400.0, 400.0 + DEFAULT_LEARNED.service_s + 250.0]


@pytest.mark.parametrize(
    "handler",
    [
        lambda r: httpx.Response(500, text="boom"),
        lambda r: httpx.Response(200, json=osrm_answer(code="NoRoute")),
        lambda r: httpx.Response(200, json=osrm_answer(400.0)),  # one leg short
        lambda r: httpx.Response(200, json=osrm_answer(-5.0, 10.0)),
        lambda r: httpx.Response(200, text="not json"),
        lambda r: httpx.Response(200, json={"routes": []}),
        lambda r: httpx.Response(302, headers={"Location": "http://elsewhere/"}),
        lambda r: httpx.Response(200, content=b"[" + b"1," * 400_000 + b"1]"),
    ],
)
def test_a_bad_answer_falls_back_to_the_straight_line(handler):
    travel, _ = router(handler)
    with pytest.raises(RouterError):
        travel.leg_seconds(LEGS, AT, DEFAULT_LEARNED)
    travel.resting_until = 0.0
    straight = estimate_route(origin=HERE, at=AT, stops=DOORS, learned=DEFAULT_LEARNED)
    assert estimate_route(origin=HERE, at=AT, stops=DOORS, learned=DEFAULT_LEARNED, travel=travel) == straight


def test_after_a_failure_the_router_is_left_alone_for_a_while():
    calls = []

    def refuse(request):
        calls.append(request)
        raise httpx.ConnectError("refused")

    travel, _ = router(refuse)
    for _ in range(5):
        estimate_route(origin=HERE, at=AT, stops=DOORS, learned=DEFAULT_LEARNED, travel=travel)
    assert len(calls) == 1


class Slow(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(1.0)
        body = json.dumps(osrm_answer(1.0, 1.0)).encode()
        # The client has given up by now: its side of the socket is gone.
        with contextlib.suppress(OSError):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_slow_router_times_out_and_the_estimate_still_comes():
    port = free_port_in(PORTS)
    server = ThreadingHTTPServer(("127.0.0.1", port), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        travel = RouterTravel(url=f"http://127.0.0.1:{port}", timeout_s=0.2)
        with pytest.raises(RouterError):
            travel.leg_seconds(LEGS, AT, DEFAULT_LEARNED)
        travel.resting_until = 0.0
        estimates = estimate_route(origin=HERE, at=AT, stops=DOORS, learned=DEFAULT_LEARNED, travel=travel)
        assert estimates == estimate_route(origin=HERE, at=AT, stops=DOORS, learned=DEFAULT_LEARNED)
    finally:
        server.shutdown()
        server.server_close()


def test_legs_that_do_not_follow_one_another_are_refused():
    travel, seen = router(lambda r: httpx.Response(200, json=osrm_answer(1.0, 1.0)))
    with pytest.raises(RouterError):
        travel.leg_seconds([(HERE, DOORS[0][1]), (HERE, DOORS[1][1])], AT, DEFAULT_LEARNED)
    assert seen == []


def test_the_router_comes_from_settings_only(settings):
    eta_travel._router.cache_clear()
    settings.ETA_ROUTER_URL = ""
    assert travel_from_settings() is None
    settings.ETA_ROUTER_URL = "http://osrm.internal:5000"
    settings.ETA_ROUTER_KIND = "valhalla"
    settings.ETA_ROUTER_TIMEOUT_S = 0.5
    travel = travel_from_settings()
    assert travel.url == "http://osrm.internal:5000" and travel.kind == "valhalla"
    assert travel.client.timeout.read == 0.5
    assert travel_from_settings() is travel
    with pytest.raises(ValueError):
        RouterTravel(url="http://x", kind="graphhopper")
    eta_travel._router.cache_clear()


@pytest.mark.parametrize("url", ["ftp://osrm.internal", "osrm.internal:5000", "http://", "file:///tmp/route"])
def test_a_router_url_that_is_not_http_is_refused(url):
    with pytest.raises(ValueError, match="http"):
        RouterTravel(url=url)
