"""Carrier webhooks: POST /api/v1/webhooks/{source}/{brand_slug}.

The signature is checked over the raw body before any of it is parsed, and
before the request counts against the brand's rate limit: unsigned requests
can't use up the allowance of the carrier's signed ones. A missing or wrong
signature, a stale timestamp and an unknown brand are all the same 401, after
the same work (an unknown brand's request is checked against secrets nobody
has), so the URLs don't tell which brand slugs exist; the reason is logged.
An unknown source is a 404: the sources are public. Redelivered webhooks are
harmless: each scan has an external id, so a second copy is answered as a
duplicate.
"""

from __future__ import annotations

import logging

import pydantic
from django.conf import settings
from django.http import HttpRequest
from ninja import Router

from .. import carriers, keys, selectors, services
from ..models import Brand, EventSource
from .auth import enforce_body_limit, enforce_rate_limit
from .common import ProblemOut, batch_answer
from .events import record_batch
from .parser import loads
from .problems import Problem, validation_problem
from .schemas import BatchResult, WebhookEnvelope

logger = logging.getLogger(__name__)

router = Router(tags=["webhooks"])


# Stands in for a slug that names no brand: verified like a brand with
# secrets of every kind, none of which any sender has.
_NO_BRAND = Brand(
    slug="",
    inbound_webhook_secret=keys.new_webhook_secret(),
    inbound_webhook_previous_secret=keys.new_webhook_secret(),
    easypost_webhook_secret=keys.new_webhook_secret(),
    aftership_webhook_secret=keys.new_webhook_secret(),
)

# One detail for every refusal: a reason such as "this brand has no secret
# configured" would tell a stranger that the brand exists.
UNAUTHORIZED_DETAIL = (
    "The webhook signature is missing, wrong or too old for this brand and source; see the source's signing scheme."
)


def _unauthorized() -> Problem:
    return Problem(401, "Invalid signature", UNAUTHORIZED_DETAIL, kind="invalid-signature")


@router.post(
    "/webhooks/{source}/{brand_slug}",
    auth=None,
    response={200: BatchResult, frozenset({400, 401, 404, 413, 422, 429, 503}): ProblemOut},
    exclude_none=True,
    summary="Receive a carrier webhook",
    openapi_extra={
        "parameters": [
            {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, "description": text}
            for name, text in [
                ("webhook-id", "generic: the message id (Standard Webhooks)."),
                ("webhook-timestamp", "generic: Unix seconds; refused if more than 5 minutes off."),
                ("webhook-signature", 'generic: "v1,<base64 HMAC-SHA256 of id.timestamp.body>", space-separated.'),
                ("X-Hmac-Signature", "easypost: hmac-sha256-hex=<hex HMAC-SHA256 of the body>."),
                ("aftership-hmac-sha256", "aftership: base64 HMAC-SHA256 of the body."),
            ]
        ],
        "requestBody": {
            "description": "The source's own format, signed by its own scheme.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
def carrier_webhook(request: HttpRequest, source: str, brand_slug: str):
    """``source`` is ``generic`` (Standard Webhooks signature: webhook-id,
    webhook-timestamp, webhook-signature; body ``{"type": …, "data":
    {"events": [...]}}`` with events as in POST /events), ``easypost``
    (``X-Hmac-Signature``; tracker.updated events) or ``aftership``
    (``aftership-hmac-sha256``; tracking_update events)."""
    enforce_body_limit(request, settings.API_MAX_BODY_BYTES)
    adapter = carriers.adapter(source)
    if adapter is None:
        raise Problem(
            404,
            "Unknown webhook source",
            f"Use one of: {', '.join(carriers.SOURCES)}.",
            kind="unknown-source",
        )
    brand = selectors.brand_by_slug(brand_slug)
    body = request.body
    try:
        adapter.verify(brand or _NO_BRAND, request.headers, body)
    except carriers.SignatureInvalid as exc:
        logger.warning("Refused %s webhook for %r%s: %s", source, brand_slug, "" if brand else " (no such brand)", exc)
        raise _unauthorized() from None
    if brand is None:  # never verifies, as no sender holds its secrets; a guard all the same
        raise _unauthorized()
    enforce_rate_limit(f"webhook:{source}:{brand.pk}:{brand.slug}")

    try:
        document = loads(body)
    except ValueError as exc:
        raise Problem(400, "Invalid JSON", f"The body is not valid JSON: {exc}", kind="invalid-json") from None

    if source == "generic":
        try:
            envelope = WebhookEnvelope.model_validate(document)
        except pydantic.ValidationError as exc:
            raise validation_problem(
                [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
            ) from None
        return record_batch(brand, envelope.data, source=EventSource.CARRIER, base="#/data/events")

    try:
        items = adapter.events(document)
    except carriers.PayloadInvalid as exc:
        raise Problem(
            422,
            "Invalid webhook body",
            str(exc),
            kind="validation-error",
            errors=[{"pointer": exc.pointer, "detail": str(exc), "code": "invalid"}],
        ) from None
    return batch_answer(services.record_brand_events(brand=brand, items=items), adapter.ITEMS_POINTER)
