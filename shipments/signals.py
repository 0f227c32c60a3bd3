"""What shipments tell the rest of the portal, always after commit.

Shipments never import their consumers: notifications and live push connect
receivers here. A receiver that fails must not lose anything: the outbox
(StatusChange.processed_at) lets a periodic sweep catch up.
"""

from django.dispatch import Signal

# Sent after the transaction that changed a shipment commits, with
# shipment_id, version (the new one) and status_change_id (or None when the
# status stayed as it was but the page would still show something new).
shipment_changed = Signal()

# Sent after a driver's position changes, with driver_id.
driver_moved = Signal()
