"""Messages to the customer about an alert: told first when a late or
missed-scan alert opens, and what a staff member sends from the "Needs
attention" queue (a ``customer_contacted`` notice).

The rule it keeps: such a message goes to the same people as a status
message (planning.customer_subscriptions: opt-outs, unsubscribes and the
brand's ``notify_recipient`` obeyed), in the recipient's language, from the
topic's template (notifications/defaults.py, or the brand's own), once per
notice, channel and recipient (the unique constraint notices.py plans
under); the SMS waits out quiet hours, the email does not. Anything it
cannot plan (an unknown topic, a parcel with no phone or email) is nothing
to send, and the notice is stamped all the same.

The running-late message is the only one about an ETA that moves past the
promised window. A computed window that moves within it is the
``eta_changed`` notice's (notifications/eta_messages.py: by the brand's
choice, a few times a parcel at most); the ETA is not a status, so no
status message is planned for either move.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import translation
from django.utils.formats import date_format

from shipments.alert_models import Alert, AlertState, ContactTopic
from shipments.models import Notice, NoticeKind, Shipment
from shipments.recipients import recipient_zone

from . import content, defaults, eta_messages, planning, rules
from .models import PROACTIVE_TOPICS, Channel, Notification

logger = logging.getLogger(__name__)

CUSTOMER_CHANNELS = (Channel.SMS, Channel.EMAIL)

# A parcel whose ETA swings in and out of its window would open and close
# `late` alerts over and over: its customer hears of each topic once in
# this long, and the tracking page carries the rest.
PROACTIVE_COOLDOWN = timedelta(hours=6)

# How a new time reads in the messages, in the recipient's zone ("Thu 3 Dec,
# 14:30"; the day and month names in their language). Spanish without the
# day: "sáb" is not GSM-7 and would make the SMS cost twice as much.
WHEN_FORMATS = {"es": "j b, H:i"}
WHEN_FORMAT = "D j M, H:i"


def customer_rows(notice: Notice, now: datetime) -> list[Notification]:
    """The customer's messages for this notice, unsaved: for an alert's
    opening, the proactive message its kind has (if the brand sends it);
    for a staff contact, the topic on the channels staff chose. Other
    notices tell the customer nothing."""
    data = notice.data if isinstance(notice.data, dict) else {}
    if notice.kind == NoticeKind.ALERT_OPENED:
        return _proactive(notice, data, now)
    if notice.kind == NoticeKind.CUSTOMER_CONTACTED:
        return _staff_contact(notice, data, now)
    if notice.kind == NoticeKind.ETA_CHANGED:
        return eta_messages.customer_rows(notice, now)
    return []


def _proactive(notice: Notice, data: dict, now: datetime) -> list[Notification]:
    topic = data.get("kind")
    if topic not in PROACTIVE_TOPICS:
        return []  # stuck, delivered_away, …: for staff, not the customer
    brand_settings = planning.settings_for(notice.shipment.brand)
    channels = [channel for channel in CUSTOMER_CHANNELS if topic in brand_settings.alert_topics_for(channel)]
    if not channels:
        return []
    if now - notice.created_at > planning.STALE_AFTER:
        logger.info("Alert notice %s is older than %s: no SMS or email for it.", notice.pk, planning.STALE_AFTER)
        return []
    if not _is_open(data.get("alert_id"), notice):
        logger.info("The alert of notice %s was resolved before it was planned: the customer is not told.", notice.pk)
        return []
    if _told_lately(notice, topic, now):
        logger.info(
            "Shipment %s heard of %s within %s: notice %s sends nothing.",
            notice.shipment_id,
            topic,
            PROACTIVE_COOLDOWN,
            notice.pk,
        )
        return []
    detail = data.get("detail") if isinstance(data.get("detail"), dict) else {}
    return _rows(
        notice, topic, channels, now, eta=_moment(detail.get("eta")), window_end=_moment(detail.get("window_end"))
    )


def _staff_contact(notice: Notice, data: dict, now: datetime) -> list[Notification]:
    topic, channels = data.get("topic"), data.get("channels")
    if not isinstance(topic, str) or topic not in ContactTopic.values:
        logger.warning("Notice %s asks for an unknown topic %r: nothing is sent.", notice.pk, topic)
        return []
    wanted = [channel for channel in CUSTOMER_CHANNELS if isinstance(channels, list) and channel in channels]
    shipment = notice.shipment
    # Staff write now, so the new time is the parcel's as it stands.
    rows = _rows(notice, topic, wanted, now, eta=shipment.eta, window_end=shipment.promised_window_end)
    if not rows:
        logger.info("Notice %s: no phone or email to reach on %s; nothing is sent.", notice.pk, wanted or "no channel")
    return rows


def _rows(notice: Notice, topic: str, channels: list[str], now: datetime, *, eta, window_end) -> list[Notification]:
    shipment = notice.shipment
    brand_settings = planning.settings_for(shipment.brand)
    language = content.language_for(shipment)
    zone = recipient_zone(shipment)
    rows: list[Notification] = []
    for channel in channels:
        not_before = rules.earliest_sms_time(now, tz_name=zone.key, status=topic) if channel == Channel.SMS else now
        window = ""
        if topic == ContactTopic.LATE:
            # An SMS held for the morning must not promise a time gone by then.
            window = window_text(shipment, language, expected_after(not_before, eta=eta, window_end=window_end))
        texts = content.texts_for(shipment, topic, language, window=window)
        rows += planning.customer_rows(shipment, channel, texts, not_before=not_before, brand_settings=brand_settings)
    for row in rows:
        row.notice, row.shipment, row.language = notice, shipment, language
    return rows


def expected_after(moment: datetime, *, eta: datetime | None, window_end: datetime | None) -> datetime | None:
    """The time to tell the customer to expect the parcel, as it stands at
    ``moment``: the ETA, else the window's end, whichever is still ahead;
    None when both have passed (a window gone by is no promise)."""
    for candidate in (eta, window_end):
        if candidate is not None and candidate > moment:
            return candidate
    return None


def window_text(shipment: Shipment, language: str, expected: datetime | None) -> str:
    """$window: the sentence about the new time, in the recipient's zone
    and language."""
    when = ""
    if expected is not None:
        with translation.override(language):
            when = date_format(expected.astimezone(recipient_zone(shipment)), WHEN_FORMATS.get(language, WHEN_FORMAT))
    return defaults.window_sentence(language, when)


def _told_lately(notice: Notice, topic: str, now: datetime) -> bool:
    return (
        Notification.objects.filter(
            shipment_id=notice.shipment_id,
            notice__kind=NoticeKind.ALERT_OPENED,
            notice__data__kind=topic,
            created_at__gte=now - PROACTIVE_COOLDOWN,
        )
        .exclude(notice_id=notice.pk)
        .exclude(channel=Channel.WEBHOOK)
        .exists()
    )


def _moment(value) -> datetime | None:
    """A moment the notice's data holds as ISO 8601, or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def still_wanted(notification: Notification) -> str | None:
    """Why a customer's message about an alert's opening should no longer
    go out (the alert resolved while its SMS waited for the morning), or
    None."""
    notice = notification.notice
    if notice is None or notice.kind != NoticeKind.ALERT_OPENED or notification.channel == Channel.WEBHOOK:
        return None
    alert_id = notice.data.get("alert_id") if isinstance(notice.data, dict) else None
    return None if _is_open(alert_id, notice) else "The alert was resolved before the message went out."


def _is_open(alert_id, notice: Notice) -> bool:
    """Whether the notice's alert (of the notice's own parcel) is open."""
    if not isinstance(alert_id, int) or isinstance(alert_id, bool):
        return False
    return Alert.objects.filter(pk=alert_id, shipment_id=notice.shipment_id, state=AlertState.OPEN).exists()
