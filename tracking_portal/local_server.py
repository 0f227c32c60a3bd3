"""Where a development server started with ``make run HOST=… PORT=…`` is
reached: the one rule for the links it prints and, when PUBLIC_BASE_URL is
unset, the links in its messages. Imported by settings, so plain Python."""

# A server bound to every interface is reached here on loopback.
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = "8000"


def local_base_url(host: str = DEFAULT_HOST, port: str | int = DEFAULT_PORT) -> str:
    """``http://host:port`` for the address the server was started on."""
    host = WILDCARDS.get(host.strip("[]"), host.strip("[]"))
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"http://{host}:{port}"


def demo_shop_url(host: str = DEFAULT_HOST, port: str | int = DEFAULT_PORT) -> str:
    """Where ``make run`` serves the demo shop (the status widget on another
    origin) beside a portal started on ``host:port``: the next port."""
    return local_base_url(host, int(port) + 1)
