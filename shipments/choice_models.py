"""Where a parcel can go instead of the door: the brand's pickup points,
the customer's choice after a failed attempt, and a parcel's hold at a
pickup point (its collection code and deadline)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from . import bounds

LATITUDE = [MinValueValidator(bounds.LATITUDE[0]), MaxValueValidator(bounds.LATITUDE[1])]
LONGITUDE = [MinValueValidator(bounds.LONGITUDE[0]), MaxValueValidator(bounds.LONGITUDE[1])]
# What a customer may write for a safe place or a neighbour: a line or two
# for the driver, not a letter.
CHOICE_DETAIL_MAX_LENGTH = 200
WEEKDAYS = range(7)


def validate_opening_hours(value) -> None:
    """Opening hours as data a page and an API client can read:
    ``[{"day": 0-6 (Monday 0), "opens": "HH:MM", "closes": "HH:MM"}, ...]``,
    several rows for a day that closes at lunch."""
    if not isinstance(value, list):
        raise ValidationError(_("Opening hours are a list of {day, opens, closes}."))
    for row in value:
        if not isinstance(row, dict) or set(row) != {"day", "opens", "closes"}:
            raise ValidationError(_("Each row of opening hours has exactly day, opens and closes."))
        if row["day"] not in WEEKDAYS or isinstance(row["day"], bool):
            raise ValidationError(_("A day is a number from 0 (Monday) to 6 (Sunday)."))
        for name in ("opens", "closes"):
            if not _is_clock(row[name]):
                raise ValidationError(_("Times are written as HH:MM, like 09:30."))
        if row["opens"] >= row["closes"]:
            raise ValidationError(_("A pickup point closes after it opens."))


def _is_clock(value) -> bool:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        return False
    hours, minutes = value[:2], value[3:]
    return hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60


class PickupPoint(models.Model):
    """A shop or locker where the brand's parcels can be collected. Its
    address is public: it is a shop, not a customer."""

    brand = models.ForeignKey("shipments.Brand", on_delete=models.CASCADE, related_name="pickup_points")
    name = models.CharField(max_length=120)
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True)
    postcode = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100)
    country = models.CharField(max_length=2, blank=True)
    lat = models.FloatField(null=True, blank=True, validators=LATITUDE)
    lng = models.FloatField(null=True, blank=True, validators=LONGITUDE)
    opening_hours = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_opening_hours],
        help_text=_('For example [{"day": 0, "opens": "09:00", "closes": "17:30"}]; Monday is day 0.'),
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["brand", "name"]
        constraints = [models.UniqueConstraint(fields=["brand", "name"], name="unique_pickup_point_name_per_brand")]

    def __str__(self) -> str:
        return f"{self.name}, {self.city}"


class ChoiceKind(models.TextChoices):
    NEW_DAY = "new_day", _("A new day")
    SAFE_PLACE = "safe_place", _("A safe place")
    NEIGHBOUR = "neighbour", _("A neighbour")
    PICKUP_POINT = "pickup_point", _("A pickup point")


class DeliveryChoice(models.Model):
    """What the customer chose after a failed attempt: the shipment's
    ``delivery_choice``. One per shipment, replaced by a newer choice;
    written only by shipments.choices."""

    shipment = models.OneToOneField("shipments.Shipment", on_delete=models.CASCADE, related_name="delivery_choice")
    kind = models.CharField(max_length=16, choices=ChoiceKind.choices)
    # The safe place, or the neighbour's name and house number.
    detail = models.CharField(max_length=CHOICE_DETAIL_MAX_LENGTH, blank=True)
    date = models.DateField(null=True, blank=True)
    pickup_point = models.ForeignKey(PickupPoint, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("delivery choice")

    def __str__(self) -> str:
        return f"{self.shipment_id}: {self.kind}"


class PickupHold(models.Model):
    """A parcel waiting at a pickup point: where, the code to collect it
    with and until when. Set by the brand (API) or staff; the customer's
    pickup-point choice names the point before the code is known."""

    shipment = models.OneToOneField("shipments.Shipment", on_delete=models.CASCADE, related_name="pickup_hold")
    pickup_point = models.ForeignKey(PickupPoint, on_delete=models.PROTECT, related_name="+")
    collection_code = models.CharField(max_length=32, blank=True)
    collect_by = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.shipment_id} @ {self.pickup_point_id}"
