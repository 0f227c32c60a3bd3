"""What people read for each status and substatus, in their language: the
one home of these labels, for the models' choices, the admin, the messages
and the pages. The statuses themselves and their rules are in statuses.py,
which stays free of Django."""

from django.utils.translation import gettext_lazy as _

from .statuses import Status, Substatus

STATUS_LABELS = {
    Status.PENDING: _("Order received"),
    Status.INFO_RECEIVED: _("Label created"),
    Status.IN_TRANSIT: _("In transit"),
    Status.OUT_FOR_DELIVERY: _("Out for delivery"),
    Status.FAILED_ATTEMPT: _("Delivery attempted"),
    Status.AVAILABLE_FOR_PICKUP: _("Ready for pickup"),
    Status.EXCEPTION: _("Needs attention"),
    Status.RETURNED_TO_SENDER: _("Returned to sender"),
    Status.DELIVERED: _("Delivered"),
    Status.CANCELLED: _("Cancelled"),
}

SUBSTATUS_LABELS = {
    Substatus.NONE: "",
    Substatus.DELAYED: _("Delayed"),
    Substatus.WEATHER_DELAY: _("Delayed by weather"),
    Substatus.ADDRESS_ISSUE: _("Address problem"),
    Substatus.RECIPIENT_UNAVAILABLE: _("Nobody available to receive it"),
    Substatus.REFUSED: _("Refused by the recipient"),
    Substatus.DAMAGED: _("Damaged"),
    Substatus.LOST: _("Lost"),
    Substatus.CUSTOMS_HOLD: _("Held at customs"),
    Substatus.ACCESS_ISSUE: _("Could not access the address"),
    Substatus.RESCHEDULED: _("Rescheduled"),
}

STATUS_CHOICES = [(s.value, STATUS_LABELS[s]) for s in Status]
SUBSTATUS_CHOICES = [(s.value, SUBSTATUS_LABELS[s] or "—") for s in Substatus]
