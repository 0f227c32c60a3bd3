"""What announces changes to open pages: the receivers of the domain's
signals, connected in pages/apps.py's ready()."""

from __future__ import annotations

import logging

from shipments import signals

from .fanout import pages_changed, pages_showing_driver
from .hub import publish

log = logging.getLogger(__name__)


def on_shipments_changed(sender, changes: list[signals.ShipmentChange], **kwargs) -> None:
    # Runs after the writer's commit: a failure here must not fail the write.
    # A page missed here is at most PAGE_TTL_SECONDS stale, and an open page
    # also polls when its stream breaks.
    try:
        publish(pages_changed(changes), invalidate=True)
    except Exception:
        log.exception("Live updates: could not announce a change of %d shipments", len(changes))


def on_driver_moved(sender, driver_id: int, **kwargs) -> None:
    # The position is live data: open pages get it in the message and move
    # their map themselves. Stored pages are left alone (invalidating every
    # page on the van at each ping was most of a morning rush's work,
    # bench/rush.py); they keep a driver's position at most
    # page_cache.POSITION_MAX_AGE_SECONDS (pages.tracking.cached_until).
    try:
        publish(pages_showing_driver(driver_id), invalidate=False)
    except Exception:
        log.exception("Live updates: could not announce a move of driver %s", driver_id)
