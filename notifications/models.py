"""What the portal tells recipients and brands, and who asked not to hear.

A Notification is one message to one recipient on one channel about one
StatusChange or one Notice (exactly one of the two). Planning is idempotent because of its unique constraint; a
worker claims a queued row with a conditional update that sets a lease, so a
crashed worker's claim runs out and another one sends it.
"""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from shipments.alert_models import ALERT_KIND_LABELS, ContactTopic
from shipments.labels import STATUS_CHOICES
from shipments.models import Brand, Notice, NoticeKind, Shipment, StatusChange

from . import rules


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    WEBHOOK = "webhook", _("Brand webhook")


# The channels a customer can opt into from the tracking page.
CUSTOMER_CHANNELS = [(Channel.SMS.value, Channel.SMS.label), (Channel.EMAIL.value, Channel.EMAIL.label)]


class State(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    # The recipient opted out between planning and sending.
    SKIPPED = "skipped", _("Skipped (opted out)")


class Notification(models.Model):
    # What the message is about: a status change, or a notice of another
    # change (delivery instructions); exactly one is set.
    status_change = models.ForeignKey(
        StatusChange, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    notice = models.ForeignKey(Notice, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    # Kept here as well as on the status change so that the log filters and
    # scopes by brand without a join through the outbox.
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # A phone number in E.164, an email address or the brand's webhook URL.
    recipient = models.CharField(max_length=500)
    subscription = models.ForeignKey(
        "Subscription", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    language = models.CharField(max_length=8, blank=True)

    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Not before this time: quiet hours and retry back-off both set it.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker's claim: while state is SENDING and the lease is in the
    # future, nobody else sends this row. claim_id fences a late writer whose
    # lease has already been taken over.
    lease_until = models.DateTimeField(null=True, blank=True)
    claim_id = models.UUIDField(null=True, blank=True, editable=False)

    provider_message_id = models.CharField(max_length=128, blank=True, db_index=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    segments = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("SMS segments the text takes (GSM-7 or UCS-2).")
    )

    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # Set by the admin's "retry": retries count from here, not from planning.
    requeued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["status_change", "channel", "recipient"], name="one_notification_per_change_channel_recipient"
            ),
            models.UniqueConstraint(
                fields=["notice", "channel", "recipient"], name="one_notification_per_notice_channel_recipient"
            ),
            models.CheckConstraint(
                condition=models.Q(status_change__isnull=False, notice__isnull=True)
                | models.Q(status_change__isnull=True, notice__isnull=False),
                name="notification_about_a_change_or_a_notice",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="notification_queued_due",
                condition=models.Q(state="queued"),
            ),
            models.Index(
                fields=["lease_until"], name="notification_sending_lease", condition=models.Q(state="sending")
            ),
            models.Index(fields=["-created_at"]),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} #{self.pk} {self.state}"

    @property
    def new_status(self) -> str:
        """The status this message announces; empty for a notice's."""
        return self.status_change.new_status if self.status_change_id else ""

    @property
    def about(self) -> str:
        """What the message tells of, for people: the new status, or the
        kind of notice (with the alert's kind, or the topic staff chose)."""
        if self.status_change_id:
            return str(self.status_change.get_new_status_display())
        if not self.notice_id:
            return ""
        label = str(NoticeKind(self.notice.kind).label)
        data = self.notice.data if isinstance(self.notice.data, dict) else {}
        kind, topic = str(data.get("kind", "")), str(data.get("topic", ""))
        detail = ALERT_KIND_LABELS.get(kind) or dict(ContactTopic.choices).get(topic)
        return f"{label}: {detail}" if detail else label


class Subscription(models.Model):
    """One address that hears about one shipment on one channel.

    The shipment's own recipient gets a row when the first message is
    planned; anyone holding the tracking link can add one. Unsubscribing
    (the email link) sets ``active`` to False and planning skips the row.
    """

    class Source(models.TextChoices):
        RECIPIENT = "recipient", _("Shipment recipient")
        TRACKING_PAGE = "tracking_page", _("Opted in on the tracking page")

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="subscriptions")
    channel = models.CharField(max_length=16, choices=CUSTOMER_CHANNELS)
    address = models.CharField(max_length=254)
    source = models.CharField(max_length=16, choices=Source.choices)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shipment", "channel", "address"], name="one_subscription_per_address")
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} for {self.shipment}"


class InboundSms(models.Model):
    """An inbound SMS already acted on, by Twilio's MessageSid. Twilio's
    signature has no expiry, so a signed request can be replayed at any
    time (a START after a later STOP); the unique sid makes a replay do
    nothing."""

    sid = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("inbound SMS")
        verbose_name_plural = _("inbound SMS messages")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return self.sid


class ConfirmationSent(models.Model):
    """When an address was last asked to confirm a re-subscription, so that
    a public tracking link cannot fill someone's inbox: one request per
    address per window, whatever the parcel."""

    address = models.CharField(max_length=254, unique=True)
    sent_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.address


class SmsOptOut(models.Model):
    """A phone number that replied STOP. It covers every brand, because
    every brand sends from the same number and the carrier blocks it too."""

    phone = models.CharField(max_length=20, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("SMS opt-out")
        verbose_name_plural = _("SMS opt-outs")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.phone


def default_sms_statuses() -> list[str]:
    return list(rules.DEFAULT_NOTIFY_STATUSES)


def default_email_statuses() -> list[str]:
    return list(rules.DEFAULT_NOTIFY_STATUSES)


def default_webhook_statuses() -> list[str]:
    return [value for value, _label in STATUS_CHOICES]


# The notices a brand's webhook hears of, each with its type in the API
# contract. A staff member's message to the customer is not one of them: it
# goes to the customer only.
NOTICE_WEBHOOK_TYPES = {
    NoticeKind.INSTRUCTIONS_UPDATED: "shipment.instructions_updated",
    NoticeKind.ALERT_OPENED: "shipment.alert_opened",
    NoticeKind.ALERT_RESOLVED: "shipment.alert_resolved",
    NoticeKind.ALERT_UPDATED: "shipment.alert_updated",
    NoticeKind.ETA_CHANGED: "shipment.eta_changed",
    NoticeKind.DELIVERY_CHOICE_UPDATED: "shipment.delivery_choice_updated",
}
WEBHOOK_NOTICE_CHOICES = [(kind.value, kind.label) for kind in NOTICE_WEBHOOK_TYPES]

# The alert messages that go to the customer by themselves when an alert of
# the same kind opens; the other topics are staff's to send.
PROACTIVE_TOPICS = (ContactTopic.LATE, ContactTopic.MISSED_SCAN)
PROACTIVE_TOPIC_CHOICES = [(topic.value, topic.label) for topic in PROACTIVE_TOPICS]


def default_webhook_notices() -> list[str]:
    return [kind.value for kind in NOTICE_WEBHOOK_TYPES]


def default_alert_topics() -> list[str]:
    return [topic.value for topic in PROACTIVE_TOPICS]


class BrandNotificationSettings(models.Model):
    """Which status changes a brand tells whom about, and which other
    changes (notices) its webhook hears of. A brand without a row uses the
    defaults (SMS and email on out for delivery, failed attempt, delivered
    and exception; webhooks on every change and every notice; SMS and email
    when a late or missed-scan alert opens)."""

    brand = models.OneToOneField(Brand, on_delete=models.CASCADE, related_name="notification_settings")
    sms_statuses = models.JSONField(default=default_sms_statuses, blank=True)
    email_statuses = models.JSONField(default=default_email_statuses, blank=True)
    webhook_statuses = models.JSONField(default=default_webhook_statuses, blank=True)
    webhook_notices = models.JSONField(
        default=default_webhook_notices,
        blank=True,
        help_text=_("Changes other than a status change that the webhook hears of (delivery instructions, alerts)."),
    )
    alert_sms = models.JSONField(
        default=default_alert_topics,
        blank=True,
        help_text=_("Alerts the customer is told of by SMS when they open (running late, missed scan)."),
    )
    alert_email = models.JSONField(
        default=default_alert_topics,
        blank=True,
        help_text=_("Alerts the customer is told of by email when they open (running late, missed scan)."),
    )
    eta_sms = models.BooleanField(
        default=False, help_text=_("Text the customer when the expected window moves (at most twice a parcel).")
    )
    eta_email = models.BooleanField(
        default=False, help_text=_("Email the customer when the expected window moves (at most twice a parcel).")
    )
    eta_change_minutes = models.PositiveSmallIntegerField(
        default=15,
        validators=[MinValueValidator(5)],
        help_text=_("How far, in minutes, the expected window must move before the customer is told."),
    )
    notify_recipient = models.BooleanField(
        default=True,
        help_text=_("Message the shipment's own phone and email; when off, only addresses that opted in hear."),
    )

    class Meta:
        verbose_name = _("brand notification settings")
        verbose_name_plural = _("brand notification settings")

    def __str__(self) -> str:
        return str(self.brand)

    def statuses_for(self, channel: str) -> list[str]:
        return {
            Channel.SMS: self.sms_statuses,
            Channel.EMAIL: self.email_statuses,
            Channel.WEBHOOK: self.webhook_statuses,
        }[channel]

    def alert_topics_for(self, channel: str) -> list[str]:
        """The alert topics the customer hears of on this channel when the
        alert opens."""
        return {Channel.SMS: self.alert_sms, Channel.EMAIL: self.alert_email}.get(channel, [])


# What a template is for: a status message, or a message about an alert.
TEMPLATE_SUBJECT_CHOICES = [
    (_("Status messages"), STATUS_CHOICES),
    (_("Alert messages"), ContactTopic.choices),
]


class MessageTemplate(models.Model):
    """A brand's own wording for one status, or one alert topic
    (ContactTopic), in one language. Without one, the built-in wording in
    notifications/defaults.py is used. ``status`` holds either: the name
    stayed so that the rows and the unique constraint made before topics
    existed are kept as they are.

    Placeholders: $first_name, $brand, $tracking_number, $status, $link,
    and $window in the running-late message.
    """

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="message_templates")
    status = models.CharField(_("status or alert topic"), max_length=32, choices=TEMPLATE_SUBJECT_CHOICES)
    language = models.CharField(max_length=8, choices=settings.LANGUAGES)
    sms_text = models.TextField(blank=True, help_text=_("Leave empty to use the built-in text."))
    email_subject = models.CharField(max_length=200, blank=True)
    email_text = models.TextField(blank=True, help_text=_("Plain paragraphs; the email's HTML is built from them."))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["brand", "status", "language"], name="one_template_per_status_language")
        ]
        ordering = ["brand", "status", "language"]

    def __str__(self) -> str:
        return f"{self.brand}: {self.get_status_display()} ({self.language})"


class WebhookAttempt(models.Model):
    """One POST to a brand's webhook endpoint and what came back."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="webhook_attempts")
    attempted_at = models.DateTimeField(default=timezone.now)
    url = models.URLField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-attempted_at"]

    def __str__(self) -> str:
        return f"{self.url} → {self.status_code or self.error[:40]}"
