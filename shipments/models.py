import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from . import bounds
from .alert_models import Alert, AlertActivity, AlertState, BrandAlertSettings  # noqa: F401 (models of the app)
from .choice_models import ChoiceKind, DeliveryChoice, PickupHold, PickupPoint  # noqa: F401 (models of the app)
from .embedding import validate_embed_origins
from .import_models import ImportJob  # noqa: F401 (a model of the app)
from .labels import STATUS_CHOICES, SUBSTATUS_CHOICES
from .outbound import RefusedDestination, check_url
from .statuses import EVENT_ORDER, TERMINAL, Status, Substatus

hex_colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour like #1a73e8."))
e164_phone = RegexValidator(r"^\+[1-9][0-9]{6,14}$", _("Use the international form, like +447700900123."))
LATITUDE = [MinValueValidator(bounds.LATITUDE[0]), MaxValueValidator(bounds.LATITUDE[1])]
LONGITUDE = [MinValueValidator(bounds.LONGITUDE[0]), MaxValueValidator(bounds.LONGITUDE[1])]


def validate_timezone(value: str) -> None:
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


def default_delivery_days() -> list[int]:
    return [0, 1, 2, 3, 4]


def new_public_token() -> str:
    return secrets.token_urlsafe(32)


class Brand(models.Model):
    """A tenant: the company whose parcels these are, and how its pages look."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    logo_url = models.URLField(blank=True)
    # An uploaded logo, checked and re-encoded (shipments/images.py); shown
    # instead of logo_url when set.
    logo = models.FileField(upload_to="brands/logos/", blank=True)
    primary_colour = models.CharField(max_length=7, default="#1d4ed8", validators=[hex_colour])
    accent_colour = models.CharField(max_length=7, default="#0f766e", validators=[hex_colour])
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=20, blank=True, validators=[e164_phone])
    support_url = models.URLField(blank=True)
    default_language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    default_timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    embed_origins = models.TextField(
        blank=True, help_text=_("Origins allowed to frame the status widget, one per line (https://shop.example.com).")
    )
    # Signs the brand's links to an order's parcels in the widget
    # (shipments/embedding.py); the previous one verifies for a day after a
    # rotation.
    embed_secret = models.CharField(max_length=100, blank=True)
    embed_previous_secret = models.CharField(max_length=100, blank=True)
    embed_secret_rotated_at = models.DateTimeField(null=True, blank=True)
    # Outgoing webhooks to the brand's systems (Standard Webhooks). The
    # previous secret stays valid for signing checks during a rotation.
    webhook_url = models.URLField(blank=True)
    webhook_secret = models.CharField(max_length=100, blank=True)
    webhook_previous_secret = models.CharField(max_length=100, blank=True)
    # Incoming carrier webhooks, each verified by its own scheme before
    # anything is read: the generic signed format (two secrets during a
    # rotation), EasyPost and AfterShip.
    inbound_webhook_secret = models.CharField(max_length=100, blank=True)
    inbound_webhook_previous_secret = models.CharField(max_length=100, blank=True)
    easypost_webhook_secret = models.CharField(max_length=100, blank=True)
    aftership_webhook_secret = models.CharField(max_length=100, blank=True)
    staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="brands",
        help_text=_("Support staff who see this brand's deliveries in the admin."),
    )
    # The weekdays the brand delivers on (Monday 0): the new days a
    # customer is offered after a failed attempt.
    delivery_days = models.JSONField(default=default_delivery_days, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        super().clean()
        # Customers choose between brands by name on the look-up: two
        # brands must never look alike there.
        if self.name and Brand.objects.filter(name__iexact=self.name.strip()).exclude(pk=self.pk).exists():
            raise ValidationError({"name": _("Another brand already has this name.")})
        if not isinstance(self.delivery_days, list) or not all(
            isinstance(day, int) and not isinstance(day, bool) and 0 <= day <= 6 for day in self.delivery_days
        ):
            raise ValidationError({"delivery_days": _("Delivery days are weekday numbers, 0 (Monday) to 6.")})
        if self.embed_origins:
            try:
                validate_embed_origins(self.embed_origins)
            except ValidationError as error:
                raise ValidationError({"embed_origins": error.error_list}) from None
        if self.webhook_url:
            try:
                check_url(self.webhook_url)
            except RefusedDestination as refused:
                raise ValidationError({"webhook_url": refused.message}) from None

    @property
    def logo_src(self) -> str:
        """Where pages load the logo from: the uploaded one, served by the
        portal under a URL that changes with each upload (so it may be
        cached), else ``logo_url``; empty without either."""
        if self.logo:
            return reverse("pages:brand_logo", args=[self.slug]) + "?v=" + slugify(self.logo.name)
        return self.logo_url


class Shipment(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="shipments")
    tracking_number = models.CharField(max_length=64)
    carrier = models.CharField(max_length=64, blank=True)
    order_ref = models.CharField(max_length=64, blank=True)

    recipient_name = models.CharField(max_length=120, blank=True)
    recipient_phone = models.CharField(max_length=20, blank=True, validators=[e164_phone])
    recipient_email = models.EmailField(blank=True)
    recipient_language = models.CharField(max_length=8, blank=True)
    recipient_timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone])

    destination_line1 = models.CharField(max_length=200, blank=True)
    destination_line2 = models.CharField(max_length=200, blank=True)
    destination_city = models.CharField(max_length=100, blank=True)
    destination_postcode = models.CharField(max_length=20, blank=True)
    destination_country = models.CharField(max_length=2, blank=True)
    destination_lat = models.FloatField(null=True, blank=True, validators=LATITUDE)
    destination_lng = models.FloatField(null=True, blank=True, validators=LONGITUDE)

    promised_window_start = models.DateTimeField(null=True, blank=True)
    promised_window_end = models.DateTimeField(null=True, blank=True)
    # The end of the first window ever promised, kept when a later one
    # replaces it: on-time is measured against the first promise (analytics).
    first_window_end = models.DateTimeField(null=True, blank=True, editable=False)
    eta = models.DateTimeField(null=True, blank=True)
    # The portal's own estimate while the parcel is on a van (shipments.eta):
    # beside the brand's promise above, never over it.
    computed_eta = models.DateTimeField(null=True, blank=True, editable=False)
    computed_window_start = models.DateTimeField(null=True, blank=True, editable=False)
    computed_window_end = models.DateTimeField(null=True, blank=True, editable=False)
    computed_at = models.DateTimeField(null=True, blank=True, editable=False)
    computed_from = models.DateTimeField(null=True, blank=True, editable=False)  # the position's time
    # The window last told (shipment.eta_changed), what the next move is measured from.
    eta_told_start = models.DateTimeField(null=True, blank=True, editable=False)
    eta_told_end = models.DateTimeField(null=True, blank=True, editable=False)

    # Written only by shipments.services.record_event (and its batch form).
    status = models.CharField(max_length=32, choices=STATUS_CHOICES, default=Status.PENDING)
    substatus = models.CharField(max_length=32, choices=SUBSTATUS_CHOICES, default=Substatus.NONE, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # The occurred_at of the newest event, whatever it did: an event newer than
    # this can be applied on its own; an older one means replaying the set.
    last_event_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every change a page would show; part of cache keys.
    version = models.PositiveIntegerField(default=1)

    # Left by the customer on the tracking page before the parcel is on the van.
    delivery_instructions = models.CharField(max_length=500, blank=True)
    delivery_instructions_at = models.DateTimeField(null=True, blank=True)

    proof_received_by = models.CharField(max_length=120, blank=True)
    proof_photo = models.FileField(upload_to="proof/photos/%Y/%m/", blank=True)
    proof_signature = models.FileField(upload_to="proof/signatures/%Y/%m/", blank=True)

    public_token = models.CharField(max_length=64, unique=True, default=new_public_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["brand", "tracking_number"], name="unique_tracking_number_per_brand"),
        ]
        indexes = [
            models.Index(fields=["tracking_number"]),
            models.Index(fields=["order_ref"]),
            models.Index(fields=["recipient_phone"]),
            models.Index(fields=["recipient_email"]),
            models.Index(fields=["status", "brand"]),
            models.Index(fields=["-created_at"]),
            # The analytics rollup finds the parcels changed since its last run.
            models.Index(fields=["updated_at"], name="shipment_updated_at"),
            # And counts a brand's parcels by their delivery day.
            models.Index(fields=["brand", "delivered_at"], name="shipment_brand_delivered"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.tracking_number

    def get_absolute_url(self) -> str:
        return reverse("pages:tracking", args=[self.public_token])

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    @property
    def is_terminal(self) -> bool:
        return self.status_enum in TERMINAL

    @property
    def recipient_first_name(self) -> str:
        return self.recipient_name.split(" ", 1)[0] if self.recipient_name else ""

    @property
    def tracking_url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.get_absolute_url()


class ApiKey(models.Model):
    """A brand's key to the API. Only a hash is stored; the key itself is
    shown once, when it is made. Keys are long and random, so a plain
    SHA-256 is the right hash (a slow password hash would only add latency)."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, help_text=_("The key's first characters, to tell keys apart."))
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.brand})"


class DeliveryRating(models.Model):
    """The customer's rating of a delivery, from the tracking page."""

    shipment = models.OneToOneField(Shipment, on_delete=models.CASCADE, related_name="rating")
    score = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(score__gte=1, score__lte=5), name="rating_score_1_to_5")
        ]

    def __str__(self) -> str:
        return f"{self.shipment} {self.score}/5"


class EventSource(models.TextChoices):
    API = "api", _("API")
    DRIVER = "driver", _("Driver app")
    CARRIER = "carrier", _("Carrier webhook")
    STAFF = "staff", _("Staff")


class TrackingEvent(models.Model):
    """One scan or report. Append-only: never edited, never deleted."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events")
    occurred_at = models.DateTimeField(help_text=_("When it happened, by the source's clock."))
    received_at = models.DateTimeField(auto_now_add=True, help_text=_("When the portal heard of it."))
    status = models.CharField(max_length=32, choices=STATUS_CHOICES)
    substatus = models.CharField(max_length=32, choices=SUBSTATUS_CHOICES, default=Substatus.NONE, blank=True)
    carrier_code = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=500, blank=True)
    location_city = models.CharField(max_length=100, blank=True)
    location_lat = models.FloatField(null=True, blank=True, validators=LATITUDE)
    location_lng = models.FloatField(null=True, blank=True, validators=LONGITUDE)
    source = models.CharField(max_length=16, choices=EventSource.choices)
    external_id = models.CharField(max_length=128)
    # A staff correction is the only event that leaves a terminal status; it
    # says who made it and why.
    is_correction = models.BooleanField(default=False)
    corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    correction_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shipment", "source", "external_id"], name="unique_event_per_source"),
            models.CheckConstraint(
                condition=models.Q(is_correction=False) | models.Q(corrected_by__isnull=False),
                name="correction_has_author",
            ),
        ]
        indexes = [models.Index(fields=["shipment", "occurred_at"])]
        ordering = list(EVENT_ORDER)

    def __str__(self) -> str:
        return f"{self.shipment_id} {self.status} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class StatusChange(models.Model):
    """One row per change of a shipment's status: the durable outbox.

    Written in the same transaction as the event that caused it. Consumers
    (notifications, live push) read it; ``processed_at`` is set by the one
    that plans notifications from it, so a sweep can find what was missed.
    """

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="status_changes")
    event = models.ForeignKey(TrackingEvent, on_delete=models.PROTECT, related_name="status_changes")
    old_status = models.CharField(max_length=32, choices=STATUS_CHOICES)
    new_status = models.CharField(max_length=32, choices=STATUS_CHOICES)
    substatus = models.CharField(max_length=32, choices=SUBSTATUS_CHOICES, default=Substatus.NONE, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="statuschange_unprocessed", condition=models.Q(processed_at=None))
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.shipment_id}: {self.old_status} → {self.new_status}"


class NoticeKind(models.TextChoices):
    INSTRUCTIONS_UPDATED = "instructions_updated", _("Delivery instructions updated")
    # The computed window moved by more than ETA_CHANGED_MINUTES (data: eta, window, was).
    ETA_CHANGED = "eta_changed", _("Expected time changed")
    ALERT_OPENED = "alert_opened", _("Alert opened")
    ALERT_RESOLVED = "alert_resolved", _("Alert resolved")
    # The customer added to an open alert (data as alert_opened's, and
    # update: {problem, text, at}).
    ALERT_UPDATED = "alert_updated", _("Alert updated by the customer")
    DELIVERY_CHOICE_UPDATED = "delivery_choice_updated", _("Delivery choice updated")
    # Staff wrote to the customer from a template (data: alert_id, topic,
    # channels): planned into the customer's SMS/email, not a webhook.
    CUSTOMER_CONTACTED = "customer_contacted", _("Customer contacted by staff")


class Notice(models.Model):
    """A change other than a status change that someone outside must hear
    of (a brand webhook): the outbox beside StatusChange.

    Written in the same transaction as the change it tells of; ``data`` is
    what the message says, fixed at that moment. ``processed_at`` is set by
    the one that plans its notifications, so a sweep finds what was missed.
    """

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=32, choices=NoticeKind.choices)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="notice_unprocessed", condition=models.Q(processed_at=None))
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.shipment_id}: {self.kind}"


class Driver(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="drivers")
    ref = models.CharField(max_length=64, help_text=_("The brand's own id for this driver."))
    name = models.CharField(max_length=120, blank=True)
    # The newest ping, kept here so the tracking page reads one row.
    last_lat = models.FloatField(null=True, blank=True, validators=LATITUDE)
    last_lng = models.FloatField(null=True, blank=True, validators=LONGITUDE)
    last_heading_deg = models.FloatField(null=True, blank=True)
    last_speed_mps = models.FloatField(null=True, blank=True)
    last_position_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["brand", "ref"], name="unique_driver_ref_per_brand")]
        ordering = ["brand", "ref"]

    def __str__(self) -> str:
        return self.name or self.ref


class LocationPing(models.Model):
    """A raw GPS fix; purged after LOCATION_PING_RETENTION_DAYS."""

    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="pings")
    lat = models.FloatField(validators=LATITUDE)
    lng = models.FloatField(validators=LONGITUDE)
    recorded_at = models.DateTimeField()
    accuracy_m = models.FloatField(null=True, blank=True)
    speed_mps = models.FloatField(null=True, blank=True)
    heading_deg = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["driver", "-recorded_at"]), models.Index(fields=["recorded_at"])]

    def __str__(self) -> str:
        return f"{self.driver_id} ({self.lat:.5f}, {self.lng:.5f}) @ {self.recorded_at:%H:%M:%S}"


class Route(models.Model):
    """A driver's ordered stops for one day."""

    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="routes")
    date = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["driver", "date"], name="one_route_per_driver_per_day")]
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.driver} {self.date}"


class Stop(models.Model):
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="stops")
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="stops")
    sequence = models.PositiveIntegerField()
    completed_at = models.DateTimeField(null=True, blank=True)
    # The driver's visit to the destination, as the missed_scan rule follows
    # it from the pings (recorded_at times): the first ping near it, the
    # first near one a dwell later (written once, not on every ping while
    # parked), and when such a visit ended by going away.
    visit_started_at = models.DateTimeField(null=True, blank=True)
    visit_near_at = models.DateTimeField(null=True, blank=True)
    visit_left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["route", "sequence"], name="unique_stop_sequence"),
            models.UniqueConstraint(fields=["route", "shipment"], name="one_stop_per_shipment_per_route"),
        ]
        ordering = ["route", "sequence"]

    def __str__(self) -> str:
        return f"{self.route} #{self.sequence}"
