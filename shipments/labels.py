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

# A scan's description in the reader's language, for carriers that describe
# their scans in English only: from the substatus when it says more than the
# status, else from the status.
SCAN_STATUS_DESCRIPTIONS = {
    Status.PENDING: _("The sender has registered the order."),
    Status.INFO_RECEIVED: _("The sender has told us about the parcel."),
    Status.IN_TRANSIT: _("The parcel was scanned on its way."),
    Status.OUT_FOR_DELIVERY: _("The parcel is on the van for delivery."),
    Status.FAILED_ATTEMPT: _("The driver could not deliver the parcel."),
    Status.AVAILABLE_FOR_PICKUP: _("The parcel is ready to be collected."),
    Status.EXCEPTION: _("There is a problem with the parcel."),
    Status.RETURNED_TO_SENDER: _("The parcel is going back to the sender."),
    Status.DELIVERED: _("The parcel was delivered."),
    Status.CANCELLED: _("The delivery was cancelled."),
}
SCAN_SUBSTATUS_DESCRIPTIONS = {
    Substatus.DELAYED: _("The parcel is delayed."),
    Substatus.WEATHER_DELAY: _("The parcel is delayed by the weather."),
    Substatus.ADDRESS_ISSUE: _("There is a problem with the address."),
    Substatus.RECIPIENT_UNAVAILABLE: _("Nobody was available to receive the parcel."),
    Substatus.REFUSED: _("The parcel was refused."),
    Substatus.DAMAGED: _("The parcel is damaged."),
    Substatus.LOST: _("The parcel is lost."),
    Substatus.CUSTOMS_HOLD: _("The parcel is held at customs."),
    Substatus.ACCESS_ISSUE: _("The driver could not get to the address."),
    Substatus.RESCHEDULED: _("The delivery was rescheduled."),
}


def scan_description(status: str, substatus: str):
    """What a scan of this status and substatus says, as a lazy
    translation; None for an unknown status."""
    try:
        by_substatus = SCAN_SUBSTATUS_DESCRIPTIONS.get(Substatus(substatus or ""))
    except ValueError:
        by_substatus = None
    if by_substatus is not None:
        return by_substatus
    try:
        return SCAN_STATUS_DESCRIPTIONS[Status(status)]
    except ValueError:
        return None


STATUS_CHOICES = [(s.value, STATUS_LABELS[s]) for s in Status]
SUBSTATUS_CHOICES = [(s.value, SUBSTATUS_LABELS[s] or "—") for s in Substatus]
