"""What a message says: texts from the brand's templates or the defaults,
the email's HTML, the webhook's JSON body and the unsubscribe link."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from string import Template

from django.conf import settings
from django.core import signing
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from shipments.alert_models import ContactTopic
from shipments.labels import STATUS_LABELS
from shipments.models import Notice, NoticeKind, Shipment, StatusChange
from shipments.recipients import recipient_language
from shipments.statuses import Status

from .defaults import default_texts
from .models import NOTICE_WEBHOOK_TYPES, MessageTemplate

UNSUBSCRIBE_SALT = "notifications.unsubscribe"


@dataclass(frozen=True)
class Texts:
    sms: str
    subject: str
    email: str


def language_for(shipment: Shipment) -> str:
    """The language of the parcel's messages: the domain's one rule, which
    the tracking page follows too (shipments.recipients)."""
    return recipient_language(shipment)


def placeholders(shipment: Shipment, status: str, language: str, window: str = "") -> dict[str, str]:
    """The values of a message's placeholders; ``status`` is a status or an
    alert topic, and $status its label. $window is the running-late
    message's sentence about the new time (empty elsewhere)."""
    with translation.override(language):
        label = str(ContactTopic(status).label if status in ContactTopic.values else STATUS_LABELS[Status(status)])
    return {
        "first_name": shipment.recipient_first_name or "",
        "brand": shipment.brand.name,
        "tracking_number": shipment.tracking_number,
        "status": label,
        "link": shipment.tracking_url,
        "window": window,
    }


def render_texts(
    shipment: Shipment, status: str, language: str, template: MessageTemplate | None = None, *, window: str = ""
) -> Texts:
    """The three texts of a status message (or an alert message, when
    ``status`` is a topic); a brand's template overrides the defaults field
    by field, so an empty field keeps the built-in one."""
    sms, subject, email = default_texts(status, language)
    if template is not None:
        sms = template.sms_text.strip() or sms
        subject = template.email_subject.strip() or subject
        email = template.email_text.strip() or email
    values = placeholders(shipment, status, language, window)
    return Texts(
        sms=Template(sms).safe_substitute(values),
        subject=sentences_capitalised(Template(subject).safe_substitute(values)),
        email=sentences_capitalised(Template(email).safe_substitute(values)),
    )


# "Hi ," where the recipient has no first name: the greeting closes up.
_EMPTY_GREETING = re.compile(r"^(\w+) +([,:!])", re.UNICODE)


def sentences_capitalised(text: str) -> str:
    """An email's text with each paragraph starting as a sentence does,
    with a capital letter: the messages' templates open with a greeting
    ("Hi $first_name,") and carry on in lowercase below it, which reads as
    a fragment in an email's paragraphs. A paragraph that opens with a link
    or an address is left as it is."""
    text = _EMPTY_GREETING.sub(r"\1\2", text, count=1)
    paragraphs = text.split("\n\n")
    for index, paragraph in enumerate(paragraphs):
        first = paragraph.split(None, 1)[0] if paragraph.strip() else ""
        if first[:1].islower() and not any(mark in first for mark in ("://", "@", "www.")):
            start = len(paragraph) - len(paragraph.lstrip())
            paragraphs[index] = paragraph[:start] + paragraph[start].upper() + paragraph[start + 1 :]
    return "\n\n".join(paragraphs)


def texts_for(shipment: Shipment, status: str, language: str, *, window: str = "") -> Texts:
    template = MessageTemplate.objects.filter(brand_id=shipment.brand_id, status=status, language=language).first()
    return render_texts(shipment, status, language, template, window=window)


def unsubscribe_url(subscription_id: int) -> str:
    token = signing.dumps(subscription_id, salt=UNSUBSCRIBE_SALT, compress=True)
    return settings.PUBLIC_BASE_URL + reverse("notifications:unsubscribe", args=[token])


def subscription_from_token(token: str) -> int | None:
    try:
        value = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return value if isinstance(value, int) else None


def absolute_logo_src(brand) -> str:
    src = brand.logo_src
    return settings.PUBLIC_BASE_URL + src if src.startswith("/") else src


def email_html(*, shipment: Shipment, subject: str, text: str, unsubscribe: str, language: str) -> str:
    with translation.override(language):
        return render_to_string(
            "notifications/email.html",
            {
                "brand": shipment.brand,
                # Mail clients need an absolute address for the logo.
                "logo_src": absolute_logo_src(shipment.brand),
                "subject": subject,
                "paragraphs": [p.strip() for p in text.split("\n\n") if p.strip()],
                "tracking_url": shipment.tracking_url,
                "unsubscribe_url": unsubscribe,
            },
        )


def email_text(*, shipment: Shipment, text: str, unsubscribe: str, language: str) -> str:
    with translation.override(language):
        return render_to_string(
            "notifications/email.txt",
            {
                "brand": shipment.brand,
                "text": text,
                "tracking_url": shipment.tracking_url,
                "unsubscribe_url": unsubscribe,
            },
        )


def webhook_body(change: StatusChange) -> str:
    """The JSON a brand's endpoint receives. Planned once and stored, so
    every retry carries the same bytes under the same webhook-id."""
    shipment = change.shipment
    event = change.event
    payload = {
        "type": "shipment.status_changed",
        "timestamp": change.created_at.isoformat(),
        "data": {
            "status_change_id": change.pk,
            "tracking_number": shipment.tracking_number,
            "order_ref": shipment.order_ref,
            "carrier": shipment.carrier,
            "status": change.new_status,
            "previous_status": change.old_status,
            "substatus": change.substatus,
            "event": {
                "occurred_at": event.occurred_at.isoformat(),
                "carrier_code": event.carrier_code,
                "description": event.description,
                "city": event.location_city,
            },
            "tracking_url": shipment.tracking_url,
        },
    }
    return _webhook_json(payload)


# The webhook type of each kind of notice a webhook hears of.
NOTICE_TYPES = NOTICE_WEBHOOK_TYPES
# What an alert's notice says, as it was when the alert opened or resolved.
ALERT_FIELDS = ("kind", "opened_at", "resolved_at", "detail")
# What an ETA's notice says: the new estimate and window, and the window before.
ETA_FIELDS = ("eta", "eta_window", "previous_window", "computed_at")


def notice_webhook_body(notice: Notice) -> str:
    """The JSON of a notice's webhook, in the status change's format: what
    the notice says was fixed when it was written, so a later edit does
    not change a message already planned."""
    shipment = notice.shipment
    data = notice.data or {}
    payload = {
        "type": NOTICE_TYPES[notice.kind],
        "timestamp": notice.created_at.isoformat(),
        "data": {
            "notice_id": notice.pk,
            "tracking_number": data.get("tracking_number") or shipment.tracking_number,
            "order_ref": shipment.order_ref,
            "carrier": shipment.carrier,
            "tracking_url": shipment.tracking_url,
        },
    }
    if notice.kind == NoticeKind.INSTRUCTIONS_UPDATED:
        payload["data"]["delivery_instructions"] = {"text": data.get("text", ""), "updated_at": data.get("updated_at")}
    elif notice.kind == NoticeKind.ETA_CHANGED:
        payload["data"].update({name: data.get(name) for name in ETA_FIELDS})
    elif notice.kind == NoticeKind.DELIVERY_CHOICE_UPDATED:
        payload["data"]["delivery_choice"] = data.get("delivery_choice")
    elif notice.kind in (NoticeKind.ALERT_OPENED, NoticeKind.ALERT_RESOLVED):
        payload["data"].update({name: data.get(name) for name in ALERT_FIELDS})
    elif notice.kind == NoticeKind.ALERT_UPDATED:
        payload["data"].update({name: data.get(name) for name in ALERT_FIELDS})
        payload["data"]["update"] = data.get("update")
    return _webhook_json(payload)


def _webhook_json(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)
