"""API keys and webhook signing secrets: made, checked and revoked here.

A key is shown once, when it is made; only its SHA-256 is stored. Keys are
long and random, so a fast hash is enough and lookup is one indexed query.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from .models import ApiKey, Brand

KEY_PREFIX = "lmk_"
# last_used_at is for people ("is this key still in use?"), so it is written
# at most this often rather than on every request.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def issue_key(api_key: ApiKey) -> str:
    """Give an unsaved ApiKey a new key; returns the key itself, which is
    not stored and cannot be shown again."""
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key.prefix = raw_key[:12]
    api_key.key_hash = hash_key(raw_key)
    return raw_key


def create_api_key(*, brand: Brand, name: str = "") -> tuple[ApiKey, str]:
    """Make a key for the brand; returns the row and the key itself."""
    api_key = ApiKey(brand=brand, name=name)
    raw_key = issue_key(api_key)
    api_key.save()
    return api_key, raw_key


def authenticate_key(raw_key: str) -> ApiKey | None:
    """The live key with this value, with its brand, or None."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 200:
        return None
    api_key = ApiKey.objects.select_related("brand").filter(key_hash=hash_key(raw_key), revoked_at=None).first()
    if api_key is not None:
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
    return api_key


def revoke_api_key(*, api_key: ApiKey) -> None:
    """Revoke a key for good; the next request with it is refused."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at=None).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
