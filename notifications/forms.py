import phonenumbers
from django import forms
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from .models import CUSTOMER_CHANNELS, Channel


class SubscribeForm(forms.Form):
    """Opt in to a parcel's updates from its tracking page."""

    channel = forms.ChoiceField(
        label=_("How should we tell you?"), choices=CUSTOMER_CHANNELS, widget=forms.RadioSelect, initial=Channel.SMS
    )
    address = forms.CharField(
        label=_("Mobile number or email address"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "on", "inputmode": "text"}),
    )

    def __init__(self, *args, default_region: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.default_region = (default_region or "").upper() or None

    def clean(self):
        cleaned = super().clean()
        channel, address = cleaned.get("channel"), (cleaned.get("address") or "").strip()
        if not channel or not address:
            return cleaned
        if channel == Channel.SMS:
            cleaned["address"] = self._phone(address)
        else:
            try:
                validate_email(address)
            except forms.ValidationError:
                self.add_error("address", _("Enter an email address, like name@example.com."))
            else:
                cleaned["address"] = address.lower()
        return cleaned

    def _phone(self, value: str) -> str:
        try:
            number = phonenumbers.parse(value, self.default_region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_possible_number(number):
            self.add_error("address", _("Enter a mobile number, like +44 7700 900123."))
            return value
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
