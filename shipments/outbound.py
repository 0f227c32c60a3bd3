"""Where the portal may send a request of its own: the rule for outbound URLs
(brands' webhook endpoints).

A URL is sendable when it is http(s), names a host, and every address that
host resolves to is on the public internet. Anything else (loopback,
private networks, link-local and the cloud metadata address, multicast,
reserved and unspecified addresses, and IPv6 forms that wrap one of those)
would let whoever sets the URL make the portal talk to machines that only
trust it because it is inside. The rule is checked when a URL is saved and
again on the address each connection is actually made to, since a DNS
answer can change in between. ``WEBHOOK_ALLOW_PRIVATE_NETWORKS`` (on only
in development by default) lifts the address part, so that a developer can
send to a receiver on their own machine.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

SCHEMES = ("http", "https")

# The well-known NAT64 prefix: an address in it reaches the IPv4 address in
# its last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedDestination(ValueError):
    """A URL or address the portal will not send to; ``message`` says why in
    words fit for the person who entered it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def private_networks_allowed() -> bool:
    return settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS


def _as_seen_on_the_wire(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    """The addresses a connection to ``ip`` may end up at: an IPv4-mapped or
    NAT64 address is the IPv4 one it carries; a 6to4 one is itself and the
    IPv4 one behind it."""
    if ip.version == 4:
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip, ip.sixtofour]
    return [ip]


def is_public_address(address: str) -> bool:
    """Whether one resolved address (as getaddrinfo gives it) is on the public
    internet. ``is_global`` alone lets multicast through, so multicast,
    reserved and unspecified addresses are refused by name too."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return all(
        c.is_global and not (c.is_multicast or c.is_reserved or c.is_unspecified or c.is_loopback or c.is_link_local)
        for c in _as_seen_on_the_wire(ip)
    )


def _address_refused(address: str) -> RefusedDestination:
    return RefusedDestination(
        _("%(address)s is not a public internet address; webhooks are only sent to public addresses.")
        % {"address": address}
    )


def _host_refused(host: str) -> RefusedDestination:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return _address_refused(host.strip("[]"))
    except ValueError:
        return RefusedDestination(
            _("%(host)s does not resolve to public addresses only; webhooks are only sent to public addresses.")
            % {"host": host}
        )


def check_address(address: str) -> None:
    """Refuse one already-resolved address, the one a connection is about to
    be made to, unless it is public (or private networks are allowed)."""
    if not private_networks_allowed() and not is_public_address(address):
        raise _address_refused(address)


def resolve_public(host: str, port: int) -> list[str]:
    """The addresses to connect to for ``host``, each checked: all of them
    must be public, or the host is refused as a whole (one private answer
    among public ones is how a rebinding attack hides). A failed look-up
    raises ``socket.gaierror``, which may pass (the resolver is down)."""
    answers = socket.getaddrinfo(host.strip("[]"), port, 0, socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(sockaddr[0] for *_rest, sockaddr in answers))
    if not addresses or not all(is_public_address(address) for address in addresses):
        raise _host_refused(host)
    return addresses


def check_url(url: str) -> None:
    """Refuse a URL the portal must not send to: not http(s), no host, or a
    host that does not resolve, or resolves to anything but public addresses
    (these two unless private networks are allowed)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise RefusedDestination(_("This is not a usable URL: %(error)s") % {"error": error}) from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise RefusedDestination(_("Use an http:// or https:// URL with a host name."))
    if private_networks_allowed():
        return
    try:
        resolve_public(parts.hostname, port)
    except (OSError, UnicodeError):
        # The same words as for an inside address, so that the answer does
        # not tell which internal names exist.
        raise _host_refused(parts.hostname) from None
