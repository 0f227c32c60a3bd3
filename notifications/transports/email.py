"""Email through Django's mailers (settings.MAILERS, from EMAIL_URL)."""

from __future__ import annotations

import smtplib
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, make_msgid

from . import OutgoingMessage, Sent, TransportError


class DjangoEmailTransport:
    def send(self, message: OutgoingMessage) -> Sent:
        default_name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
        message_id = make_msgid(domain=address.rsplit("@", 1)[-1] or None)
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body,
            from_email=formataddr((message.from_name or default_name, address)),
            to=[message.to],
            reply_to=[message.reply_to] if message.reply_to else None,
            headers={"Message-ID": message_id, **message.headers},
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        try:
            email.send(using="default")
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _reply in error.recipients.values()]
            raise TransportError(
                f"Recipient refused: {error.recipients}", permanent=all(code >= 500 for code in codes)
            ) from error
        except smtplib.SMTPResponseException as error:
            # 5xx replies are final; 4xx ask us to come back later.
            raise TransportError(
                f"SMTP {error.smtp_code}: {error.smtp_error!r}", permanent=error.smtp_code >= 500
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise TransportError(f"Mail server unreachable: {error}") from error
        return Sent(message_id.strip("<>"))
