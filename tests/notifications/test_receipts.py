"""Delivery receipts (notifications/receipts.py): a row only moves forward."""

from notifications import receipts, sending
from notifications.models import (
    Notification,
    State,
)

from .test_sending import planned


def test_receipts_move_forward_only(shipment):
    notification = planned(shipment)
    sending.send_notification(notification_id=notification.pk)
    sid = Notification.objects.get(pk=notification.pk).provider_message_id
    assert receipts.record_delivery_receipt(provider_message_id=sid, status="sent")
    assert Notification.objects.get(pk=notification.pk).state == State.SENT
    receipts.record_delivery_receipt(provider_message_id=sid, status="delivered")
    receipts.record_delivery_receipt(provider_message_id=sid, status="undelivered", error_code="30003")
    notification.refresh_from_db()
    assert notification.state == State.DELIVERED
    assert notification.delivered_at is not None


def test_undelivered_receipt_marks_failed_with_the_code(shipment):
    notification = planned(shipment)
    sending.send_notification(notification_id=notification.pk)
    sid = Notification.objects.get(pk=notification.pk).provider_message_id
    receipts.record_delivery_receipt(provider_message_id=sid, status="undelivered", error_code="30003")
    notification.refresh_from_db()
    assert notification.state == State.FAILED
    assert "30003" in notification.last_error
    assert not receipts.record_delivery_receipt(provider_message_id="SMunknown", status="delivered")
