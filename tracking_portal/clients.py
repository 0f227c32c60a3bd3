"""Who a request comes from, for the limits that count per client.

The address is the peer as the ASGI server resolved it: uvicorn puts a
trusted proxy's client address in REMOTE_ADDR (``--forwarded-allow-ips``),
and a header any client can send is no address, so none is read here.

An IPv6 client usually holds a whole /64 and can take a new address from it
for every request; it is counted as that /64, as an IPv4 client is counted
as its one address.
"""

from __future__ import annotations

import ipaddress

IPV6_CLIENT_PREFIX = 64


def client_key(address: str) -> str | None:
    """What one client's requests are counted under: an address (for an
    IPv6 client the first of its /64, so that it is still an address where
    one is stored), or None when the server gave no usable one."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/{IPV6_CLIENT_PREFIX}", strict=False).network_address)


def client_address(request) -> str | None:
    """The request's client, as ``client_key`` counts it."""
    return client_key(request.META.get("REMOTE_ADDR") or "")
