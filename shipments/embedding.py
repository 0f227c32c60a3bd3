"""The status widget's rules on the brand's side: which origins may frame it
(the brand's ``embed_origins``) and the signed links to an order's parcels
that the brand's own server makes with its embed secret.

A signed order link carries ``expires`` (unix seconds) and ``signature``, the
lowercase hex HMAC-SHA256 of ``"<order_ref>.<expires>"`` keyed by the embed
secret's UTF-8 bytes, exactly as ``manage.py embed_secret`` prints it.
"""

import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# How far ahead a link may expire: a brand's server signs links for a page
# view, not forever, and an absurd expiry is a sign of a mistake.
MAX_LINK_LIFETIME = timedelta(days=31)
# How long the previous secret still verifies after a rotation, so that the
# brand's servers can pick up the new one.
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
SECRET_PREFIX = "embsec_"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_EXPIRES = re.compile(r"[0-9]{1,12}")
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


def new_embed_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def normalise_origin(entry: str) -> str:
    """``entry`` as ``scheme://host[:port]`` (lowercase, no default port), or
    ValidationError: only http(s), no path, query, fragment, user or
    wildcard."""
    text = entry.strip()
    invalid = ValidationError(
        _("%(entry)s is not an origin: write it as https://shop.example.com (no path, no wildcard)."),
        params={"entry": text[:200]},
        code="invalid_origin",
    )
    if not text or "*" in text or any(ch.isspace() for ch in text) or "\\" in text:
        raise invalid
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise invalid from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        raise invalid
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise invalid
    if ":" in host:  # an IPv6 literal, written in brackets
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise invalid from None
        host = f"[{host}]"
    elif not _HOST.fullmatch(host):
        raise invalid
    origin = f"{scheme}://{host}"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        origin += f":{port}"
    return origin


def parse_origins(text: str) -> list[str]:
    """The origins in ``text``, one per line, normalised, without repeats;
    ValidationError naming every bad line."""
    origins: list[str] = []
    errors: list[ValidationError] = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        try:
            origin = normalise_origin(line)
        except ValidationError as error:
            errors.append(error)
            continue
        if origin not in origins:
            origins.append(origin)
    if errors:
        raise ValidationError(errors)
    return origins


def validate_embed_origins(text: str) -> None:
    """The validator ``Brand.clean()`` uses for ``embed_origins``."""
    parse_origins(text)


def embed_origins(brand) -> list[str]:
    """The origins allowed to frame the brand's widget; a bad line (saved
    around the validation) is left out, never widened."""
    origins: list[str] = []
    for line in (brand.embed_origins or "").splitlines():
        if not line.strip():
            continue
        try:
            origin = normalise_origin(line)
        except ValidationError:
            continue
        if origin not in origins:
            origins.append(origin)
    return origins


def order_signature(secret: str, order_ref: str, expires: int) -> str:
    message = f"{order_ref}.{int(expires)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_order_link(brand, order_ref: str, expires: str, signature: str) -> bool:
    """Whether ``signature`` signs ``order_ref`` until ``expires`` with the
    brand's embed secret (or, for a day after a rotation, the previous one)."""
    if not isinstance(expires, str) or not isinstance(signature, str) or not isinstance(order_ref, str):
        return False
    if not _EXPIRES.fullmatch(expires) or not _SIGNATURE.fullmatch(signature) or not order_ref:
        return False
    expires_at = int(expires)
    now = time.time()
    if expires_at <= now or expires_at > now + MAX_LINK_LIFETIME.total_seconds():
        return False
    secrets_to_try = [brand.embed_secret]
    rotated_at = brand.embed_secret_rotated_at
    if brand.embed_previous_secret and rotated_at and timezone.now() - rotated_at < PREVIOUS_SECRET_GRACE:
        secrets_to_try.append(brand.embed_previous_secret)
    valid = False
    for secret in secrets_to_try:
        if secret:
            expected = order_signature(secret, order_ref, expires_at)
            valid |= hmac.compare_digest(expected, signature)
    return valid
