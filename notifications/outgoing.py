"""What a planned notification is handed to its transport as.

The rule it keeps: the texts are the ones planned (in the language
planned), while the brand's sender name, reply-to, webhook URL and signing
secrets are read as they are now, so a retry follows the brand.
"""

from __future__ import annotations

from . import content
from .models import Channel, Notification
from .transports import OutgoingMessage, TransportError


def message_for(notification: Notification) -> OutgoingMessage:
    """The message this notification's transport sends: an email with its
    HTML and unsubscribe headers, a signed webhook, or a plain SMS."""
    shipment = notification.shipment
    if notification.channel == Channel.EMAIL:
        unsubscribe = content.unsubscribe_url(notification.subscription_id) if notification.subscription_id else ""
        return OutgoingMessage(
            notification_id=notification.pk,
            channel=notification.channel,
            to=notification.recipient,
            subject=notification.subject,
            from_name=shipment.brand.name,
            reply_to=shipment.brand.support_email,
            body=content.email_text(
                shipment=shipment, text=notification.body, unsubscribe=unsubscribe, language=notification.language
            ),
            html=content.email_html(
                shipment=shipment,
                subject=notification.subject,
                text=notification.body,
                unsubscribe=unsubscribe,
                language=notification.language,
            ),
            headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
            if unsubscribe
            else {},
        )
    if notification.channel == Channel.WEBHOOK:
        if not webhook_url(notification):
            raise TransportError("The brand no longer has a webhook URL.", permanent=True)
        return OutgoingMessage(
            notification_id=notification.pk,
            channel=notification.channel,
            to=webhook_url(notification),
            body=notification.body,
            signing_secret=shipment.brand.webhook_secret,
            previous_signing_secret=shipment.brand.webhook_previous_secret,
        )
    return OutgoingMessage(
        notification_id=notification.pk, channel=notification.channel, to=notification.recipient, body=notification.body
    )


def webhook_url(notification: Notification) -> str:
    """Where a webhook goes: the brand's URL as it is now, not the one it had
    when the notification was planned, so that a retry follows the brand
    to its new endpoint (and its current signing secret, read beside it)."""
    return notification.shipment.brand.webhook_url
