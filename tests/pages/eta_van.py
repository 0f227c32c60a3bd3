"""A parcel on a van whose ETA the portal works out, for the page tests
(the fixtures ``frozen`` and ``van`` are in conftest.py): where it goes,
how the van drives there, the page it shows."""

import math

from shipments import drivers, eta

DEST = (51.5034, -0.1276)


def east(metres: float) -> tuple[float, float]:
    return DEST[0], DEST[1] + metres / (111_195 * math.cos(math.radians(DEST[0])))


def hhmm(moment) -> str:
    return f"{moment:%H:%M}"


def drive(brand, route, at, metres=0.0):
    drivers.record_locations(brand=brand, driver_ref="van-1", pings=[drivers.Ping(*east(metres), at)])
    eta.recompute_route(route_id=route.pk, now=at)


def page(client, shipment) -> str:
    response = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return response.content.decode()
