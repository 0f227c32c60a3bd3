"""The generic signed format: Standard Webhooks (webhook-id,
webhook-timestamp, webhook-signature "v1,<base64 HMAC-SHA256 of
id.timestamp.body>"), five minutes' tolerance, and the brand's current and
previous secrets both accepted while it rotates them. The body's events are
in the form of POST /api/v1/events (see the API's WebhookEnvelope)."""

from __future__ import annotations

import binascii

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from ..models import Brand
from . import SignatureInvalid


def verify(brand: Brand, headers, body: bytes) -> None:
    secrets = [s for s in (brand.inbound_webhook_secret, brand.inbound_webhook_previous_secret) if s]
    if not secrets:
        raise SignatureInvalid("This brand has no inbound webhook secret configured.")
    wanted = {name: headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    if not all(wanted.values()):
        raise SignatureInvalid("Missing webhook-id, webhook-timestamp or webhook-signature header.")
    last_error = "No matching signature found."
    for secret in secrets:
        try:
            Webhook(secret).verify(body, wanted, json_parse=False)
            return
        except WebhookVerificationError as exc:
            last_error = f"{exc}."
            if "timestamp" in str(exc).lower() or "headers" in str(exc).lower():
                # Stale or malformed headers fail the same way for every secret.
                break
        except (ValueError, UnicodeDecodeError, binascii.Error, EmptyWebhookSecretError):
            # A signature header that is not "v1,<base64>", or a body that is
            # not UTF-8, can match no secret.
            last_error = "Malformed signature or body."
    raise SignatureInvalid(last_error)
