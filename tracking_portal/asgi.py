import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")

django_application = get_asgi_application()

from shipments.live import STREAM_PATH, sse_app  # noqa: E402  (needs Django set up first)


async def application(scope, receive, send):
    # A tracking page's event stream lives for minutes: it skips Django's
    # handler, which would hold a thread per open stream (shipments.live).
    if scope["type"] == "http" and STREAM_PATH.match(scope["path"]):
        await sse_app(scope, receive, send)
    else:
        await django_application(scope, receive, send)


# What is loaded by now lives as long as the process; frozen, it stays out of
# the full collections that otherwise grow with the number of open streams.
gc.freeze()
