"""What shipments tell the rest of the portal, always after commit.

Shipments never import their consumers: notifications and live push connect
receivers here. A receiver that fails must not lose anything: the outbox
(StatusChange.processed_at) lets a periodic sweep catch up.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.dispatch import Signal


@dataclass(frozen=True)
class ShipmentChange:
    shipment_id: int
    # The shipment's version after the change.
    version: int
    # The StatusChange written, or None when the status stayed as it was but
    # the page would still show something new (an event, proof, a rating).
    status_change_id: int | None = None
    # What the writer already knew, so that receivers need not read it
    # back: the page's token, and the status before and after. Empty when
    # the writer did not say.
    token: str = ""
    old_status: str = ""
    status: str = ""
    # Only the expected times moved (the ETA's recompute): an open page can
    # be sent its new status card rather than asked to load itself again.
    times_only: bool = False


# Sent once after each transaction that changed shipments commits, with
# ``changes``: a list of ShipmentChange, one per shipment. A batch of a
# thousand events is one announcement, so receivers can do their work (pages
# to refresh, planning to enqueue) in a few round trips rather than a
# thousand.
shipments_changed = Signal()

# Sent after a driver's position changes, with driver_id.
driver_moved = Signal()

# Sent once after each transaction that wrote Notices (the outbox of changes
# other than a status change) commits, with ``notice_ids``. Notice.processed_at
# lets a sweep catch up on what a failed receiver missed.
notices_written = Signal()


def announce_on_commit(sender, changes: Sequence[ShipmentChange]) -> None:
    """Send ``shipments_changed`` for these changes once the current
    transaction commits (at once outside a transaction)."""
    if changes:
        frozen = list(changes)
        transaction.on_commit(lambda: shipments_changed.send(sender=sender, changes=frozen))


def announce_notices_on_commit(sender, notice_ids: Sequence[int]) -> None:
    """Send ``notices_written`` for these notices once the current
    transaction commits (at once outside a transaction)."""
    if notice_ids:
        frozen = list(notice_ids)
        transaction.on_commit(lambda: notices_written.send(sender=sender, notice_ids=frozen))
