"""The portal under a real uvicorn in a thread of the test process (so that
it uses the test database), and raw HTTP/1.1 over sockets to talk to it."""

from __future__ import annotations

import contextlib
import socket

from ..conftest import free_port_in, uvicorn_in_thread

# Apart from the browser tests' ports and the notification tests'.
PORTS = range(8460, 8500)
# A failure guard for reads, never a measure of speed.
GUARD_SECONDS = 15


@contextlib.contextmanager
def serve(application):
    with uvicorn_in_thread(application, port=free_port_in(PORTS)) as port:
        yield port


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD_SECONDS)
    sock.settimeout(GUARD_SECONDS)
    return sock


def head(method: str, path: str, port: int, *headers: str, host: str | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


class Answer:
    def __init__(self, raw: bytes):
        self.raw = raw
        header, _, self.body = raw.partition(b"\r\n\r\n")
        status_line, *lines = header.decode("latin-1").split("\r\n")
        # 0: nothing came.
        self.status = int(status_line.split()[1]) if raw else 0
        self.headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()


def read_head(sock: socket.socket) -> Answer:
    """Read up to the end of the response's headers (and what came with them)."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        if not chunk:
            break
        raw += chunk
    return Answer(raw)


def read_to_close(sock: socket.socket) -> tuple[Answer, bool]:
    """The whole answer of a connection the server closes after it; and
    whether it did close (EOF or reset) rather than leave it open."""
    raw = b""
    try:
        while chunk := sock.recv(65536):
            raw += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        return Answer(raw), False
    return Answer(raw), True


def exchange(port: int, data: bytes) -> Answer:
    with connect(port) as sock:
        sock.sendall(data)
        return read_to_close(sock)[0]
