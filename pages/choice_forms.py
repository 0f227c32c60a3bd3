"""The customer's forms after a failed attempt and before delivery. Each
choice is a small form of its own (a new day, a safe place, a neighbour, a
pickup point), so that each works without JavaScript and its errors stand
beside it."""

from __future__ import annotations

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from shipments.choice_models import CHOICE_DETAIL_MAX_LENGTH, ChoiceKind
from shipments.choices import ADDRESS_NOTE_MAX_LENGTH

from .forms import TextareaField

TOO_LONG = _("Please keep it to %(limit_value)d characters (it has %(show_value)d).")


class DeliveryChoiceForm(forms.Form):
    """One choice: ``kind`` says which; the field that kind needs is
    required, the others are ignored. Whether the day is offered and the
    point the brand's is the service's rule (shipments.choices)."""

    kind = forms.ChoiceField(choices=ChoiceKind.choices, widget=forms.HiddenInput)
    date = forms.DateField(label=_("Choose a day"), required=False, input_formats=["%Y-%m-%d"])
    safe_place = forms.CharField(
        label=_("Where should the driver leave it?"),
        max_length=CHOICE_DETAIL_MAX_LENGTH,
        required=False,
        error_messages={"max_length": TOO_LONG},
        help_text=format_lazy(
            _("For example: in the porch, behind the side gate. Up to {count} characters."),
            count=CHOICE_DETAIL_MAX_LENGTH,
        ),
    )
    neighbour = forms.CharField(
        label=_("Your neighbour's name and house number"),
        max_length=CHOICE_DETAIL_MAX_LENGTH,
        required=False,
        error_messages={"max_length": TOO_LONG},
        help_text=_("For example: Sam Patel, number 14."),
    )
    pickup_point = forms.IntegerField(label=_("Choose a pickup point"), required=False, min_value=1)

    REQUIRED_FOR = {
        ChoiceKind.NEW_DAY: ("date", _("Please choose a day.")),
        ChoiceKind.SAFE_PLACE: ("safe_place", _("Please say where the driver should leave it.")),
        ChoiceKind.NEIGHBOUR: ("neighbour", _("Please give your neighbour's name and house number.")),
        ChoiceKind.PICKUP_POINT: ("pickup_point", _("Please choose a pickup point.")),
    }

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind in self.REQUIRED_FOR:
            field, message = self.REQUIRED_FOR[kind]
            value = cleaned.get(field)
            if field not in self.errors and (value is None or (isinstance(value, str) and not value.strip())):
                self.add_error(field, message)
        return cleaned

    @property
    def detail(self) -> str:
        kind = self.cleaned_data["kind"]
        if kind == ChoiceKind.SAFE_PLACE:
            return self.cleaned_data["safe_place"]
        if kind == ChoiceKind.NEIGHBOUR:
            return self.cleaned_data["neighbour"]
        return ""


class AddressNoteForm(forms.Form):
    note = TextareaField(
        label=_("Correct or complete your address"),
        max_length=ADDRESS_NOTE_MAX_LENGTH,
        error_messages={"max_length": TOO_LONG, "required": _("Please write what is missing or wrong.")},
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=format_lazy(
            _(
                "For example: flat 3 is round the back, or the right house number. It goes to our support team, "
                "who check it with the driver. Up to {count} characters."
            ),
            count=ADDRESS_NOTE_MAX_LENGTH,
        ),
    )
