"""The customer's message when the computed window moves (an
``eta_changed`` notice, shipments/eta.py), by the brand's choice
(BrandNotificationSettings.eta_sms / eta_email).

The rule it keeps: only when the window moved at least the brand's
``eta_change_minutes``, at most MAX_PER_PARCEL notices' worth per parcel
(the page carries every later move), only while the parcel is still out for
delivery and the new window is still ahead, never held for the morning (a
window that waited out the night would be a window gone by); to the same
people as a status message, in their language, once per notice, channel and
recipient (the unique constraint notices.py plans under).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import translation
from django.utils.translation import gettext

from shipments.models import Notice, NoticeKind
from shipments.recipients import recipient_zone
from shipments.statuses import Status

from . import content, planning, rules
from .models import Channel, Notification

logger = logging.getLogger(__name__)

# A customer hears of a moving window this many times a parcel at most.
MAX_PER_PARCEL = 2


def customer_rows(notice: Notice, now: datetime) -> list[Notification]:
    """The customer's messages for an ``eta_changed`` notice, unsaved."""
    shipment = notice.shipment
    brand_settings = planning.settings_for(shipment.brand)
    channels = [
        channel
        for channel, wanted in ((Channel.SMS, brand_settings.eta_sms), (Channel.EMAIL, brand_settings.eta_email))
        if wanted
    ]
    data = notice.data if isinstance(notice.data, dict) else {}
    window = data.get("eta_window") if isinstance(data.get("eta_window"), dict) else {}
    start, end = _moment(window.get("start")), _moment(window.get("end"))
    moved = data.get("moved_minutes")
    if not channels or start is None or end is None or not isinstance(moved, int | float):
        return []
    if moved < brand_settings.eta_change_minutes:
        return []
    if shipment.status != Status.OUT_FOR_DELIVERY or end <= now or now - notice.created_at > planning.STALE_AFTER:
        return []
    if _times_told(notice) >= MAX_PER_PARCEL:
        logger.info(
            "Shipment %s heard of %d moved windows already; notice %s sends nothing.",
            shipment.pk,
            MAX_PER_PARCEL,
            notice.pk,
        )
        return []
    language = content.language_for(shipment)
    zone = recipient_zone(shipment)
    texts = _texts(shipment, language, start.astimezone(zone), end.astimezone(zone))
    rows: list[Notification] = []
    for channel in channels:
        if channel == Channel.SMS and rules.earliest_sms_time(now, tz_name=zone.key, status="eta_changed") > now:
            continue
        rows += planning.customer_rows(shipment, channel, texts, not_before=now, brand_settings=brand_settings)
    for row in rows:
        row.notice, row.shipment, row.language = notice, shipment, language
    return rows


def _times_told(notice: Notice) -> int:
    """How many earlier eta_changed notices of this parcel reached its
    customer."""
    return (
        Notification.objects.filter(shipment_id=notice.shipment_id, notice__kind=NoticeKind.ETA_CHANGED)
        .exclude(notice_id=notice.pk)
        .exclude(channel=Channel.WEBHOOK)
        .values("notice_id")
        .distinct()
        .count()
    )


def _texts(shipment, language: str, start: datetime, end: datetime) -> content.Texts:
    with translation.override(language):
        values = {
            "brand": shipment.brand.name,
            "number": shipment.tracking_number,
            "start": f"{start:%H:%M}",
            "end": f"{end:%H:%M}",
            "url": shipment.tracking_url,
        }
        sms = gettext("%(brand)s: parcel %(number)s now arrives between %(start)s and %(end)s. %(url)s") % values
        subject = gettext("Your parcel %(number)s now arrives between %(start)s and %(end)s") % values
        email = (
            gettext(
                "The driver's progress moved your delivery window: your parcel %(number)s from %(brand)s now "
                "arrives between %(start)s and %(end)s.\n\nFollow it live: %(url)s"
            )
            % values
        )
    return content.Texts(sms=sms, subject=subject, email=email)


def _moment(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
