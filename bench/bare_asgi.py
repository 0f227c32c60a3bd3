"""The portal's ASGI application with one more path, /bench/bare/: a bare
ASGI callable answering "ok", the server's own limit, measured under the
same uvicorn process as the pages (bench/tracking_page.py)."""

from tracking_portal.asgi import application as portal

BARE_PATH = "/bench/bare/"
_OK_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"2")]


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == BARE_PATH:
        await send({"type": "http.response.start", "status": 200, "headers": _OK_HEADERS})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await portal(scope, receive, send)
