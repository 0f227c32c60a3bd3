"""Delivery receipts: Twilio's status callbacks applied to the SMS they
are about.

The rule it keeps: receipts arrive out of order, so a row only moves
forward (sent → delivered or failed, never back), and a receipt saying the
number opted out with the carrier records the opt-out, as a send refused
for it does (notifications.sending).
"""

from __future__ import annotations

from django.utils import timezone

from .models import Channel, Notification, SmsOptOut, State
from .transports.sms import TWILIO_OPTED_OUT

TWILIO_DELIVERED = frozenset({"delivered", "read"})
TWILIO_FAILED = frozenset({"undelivered", "failed"})


def record_delivery_receipt(*, provider_message_id: str, status: str, error_code: str = "") -> bool:
    """Apply Twilio's status callback. Receipts can arrive out of order, so
    a row only moves forward: sent → delivered or failed, never back."""
    now = timezone.now()
    rows = Notification.objects.filter(provider_message_id=provider_message_id, channel=Channel.SMS)
    if status in TWILIO_DELIVERED:
        updated = rows.filter(state__in=[State.SENT, State.SENDING, State.FAILED]).update(
            state=State.DELIVERED, delivered_at=now
        )
    elif status in TWILIO_FAILED:
        updated = rows.filter(state__in=[State.SENT, State.SENDING]).update(
            state=State.FAILED, failed_at=now, last_error=f"Carrier reported {status} (error {error_code or 'none'})."
        )
        if error_code == str(TWILIO_OPTED_OUT):
            for phone in rows.values_list("recipient", flat=True)[:1]:
                SmsOptOut.objects.get_or_create(phone=phone)
    else:
        return rows.exists()
    return bool(updated) or rows.exists()
