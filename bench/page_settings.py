"""Settings for the benchmarks' server: the portal's own, with DEBUG off (as
in production), quiet logs, and a urlconf that adds a trivial view."""

from tracking_portal.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.page_urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# As in production: WhiteNoise indexes the static files once at start-up
# rather than looking at the disk on every request.
WHITENOISE_AUTOREFRESH = False
