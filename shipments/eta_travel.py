"""Road travel times from a routing server (OSRM or Valhalla), behind the
ETA model's ``Travel`` interface.

Chosen by configuration: ``ETA_ROUTER_URL`` (empty: no router, the model's
straight line with the learned detour) and ``ETA_ROUTER_KIND`` (``osrm`` or
``valhalla``). The host comes from settings only, never from a request or a
brand. One request per recompute times every leg of the route; the timeout
is short, a ping must not wait on it. On any failure (timeout, refused,
an answer that is not a route of these legs) it raises, and
``estimate_route`` falls back to the straight line; after a failure the
router is left alone for a while, so a router that is down costs one
timeout, not one per ping.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from .eta_model import Learned, Point

DEFAULT_TIMEOUT_S = 1.0
# After a failure, this long without asking.
REST_AFTER_FAILURE_S = 30.0
# A route's answer without geometry is small; anything past this is not one.
MAX_ANSWER_BYTES = 512 * 1024


class RouterError(Exception):
    pass


class RouterTravel:
    """Leg durations from a routing server. Its durations are its own
    (its traffic model or none); the learned detour and hourly speeds are
    for the straight line it replaces."""

    def __init__(self, *, url: str, kind: str = "osrm", timeout_s: float = DEFAULT_TIMEOUT_S, transport=None):
        if kind not in ("osrm", "valhalla"):
            raise ValueError(f"Unknown router kind {kind!r}: osrm or valhalla.")
        where = urlsplit(url)
        if where.scheme not in ("http", "https") or not where.netloc:
            raise ValueError(f"The router's URL must be http:// or https://, not {url!r}.")
        self.url = url.rstrip("/")
        self.kind = kind
        self.client = httpx.Client(timeout=timeout_s, follow_redirects=False, transport=transport)
        self.resting_until = 0.0

    def leg_seconds(self, legs: Sequence[tuple[Point, Point]], depart: datetime, learned: Learned) -> list[float]:
        if not legs:
            return []
        if time.monotonic() < self.resting_until:
            raise RouterError("resting after a failure")
        points = [legs[0][0], *(b for _, b in legs)]
        if any(a != points[i] for i, (a, _) in enumerate(legs)):
            raise RouterError("the legs do not follow one another")
        try:
            seconds = self._osrm(points) if self.kind == "osrm" else self._valhalla(points)
        except (httpx.HTTPError, RouterError, ValueError, KeyError, TypeError, IndexError) as exc:
            self.resting_until = time.monotonic() + REST_AFTER_FAILURE_S
            raise RouterError(str(exc)) from exc
        if len(seconds) != len(legs) or any(not 0 <= s < 86_400 for s in seconds):
            self.resting_until = time.monotonic() + REST_AFTER_FAILURE_S
            raise RouterError("the answer is not a route of these legs")
        return seconds

    def _read(self, response: httpx.Response) -> dict:
        if response.status_code != 200:
            raise RouterError(f"router answered {response.status_code}")
        if len(response.content) > MAX_ANSWER_BYTES:
            raise RouterError("router answer too large")
        return response.json()

    def _osrm(self, points: list[Point]) -> list[float]:
        where = ";".join(f"{p.lng:.6f},{p.lat:.6f}" for p in points)
        answer = self._read(self.client.get(f"{self.url}/route/v1/driving/{where}", params={"overview": "false"}))
        if answer.get("code") != "Ok":
            raise RouterError(f"router: {answer.get('code')}")
        return [float(leg["duration"]) for leg in answer["routes"][0]["legs"]]

    def _valhalla(self, points: list[Point]) -> list[float]:
        body = {"locations": [{"lat": p.lat, "lon": p.lng} for p in points], "costing": "auto"}
        answer = self._read(self.client.post(f"{self.url}/route", json=body))
        return [float(leg["summary"]["time"]) for leg in answer["trip"]["legs"]]


@lru_cache(maxsize=4)
def _router(url: str, kind: str, timeout_s: float) -> RouterTravel:
    return RouterTravel(url=url, kind=kind, timeout_s=timeout_s)


def travel_from_settings() -> RouterTravel | None:
    """The configured router, one per process; None when none is set
    (settings.ETA_ROUTER_URL, ETA_ROUTER_KIND and ETA_ROUTER_TIMEOUT_S,
    checked when the settings load)."""
    if not settings.ETA_ROUTER_URL:
        return None
    return _router(settings.ETA_ROUTER_URL, settings.ETA_ROUTER_KIND, float(settings.ETA_ROUTER_TIMEOUT_S))
