import phonenumbers
from django import forms
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from .models import Channel


class SubscribeForm(forms.Form):
    """Opt in to a parcel's updates from its tracking page: a mobile number,
    an email address or both, each in a field of its own (so that phones
    show the right keyboard), in one POST."""

    phone = forms.CharField(
        label=_("Mobile number"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "inputmode": "tel", "autocomplete": "tel"}),
    )
    email = forms.CharField(
        label=_("Email address"),
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def __init__(self, data=None, *args, default_region: str = "", **kwargs):
        if data is not None and not data.get("phone") and not data.get("email") and data.get("channel"):
            # A form from before each channel had a field of its own
            # (channel and address), still open in someone's browser.
            legacy = {Channel.SMS: "phone", Channel.EMAIL: "email"}.get(data.get("channel"))
            data = data.copy()
            if legacy:
                data[legacy] = data.get("address", "")
        super().__init__(data, *args, **kwargs)
        self.default_region = (default_region or "").upper() or None

    def clean_phone(self) -> str:
        value = (self.cleaned_data.get("phone") or "").strip()
        if not value:
            return ""
        try:
            number = phonenumbers.parse(value, self.default_region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_possible_number(number):
            raise forms.ValidationError(_("Enter a mobile number, like +44 7700 900123."))
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def clean_email(self) -> str:
        value = (self.cleaned_data.get("email") or "").strip()
        if not value:
            return ""
        try:
            validate_email(value)
        except forms.ValidationError:
            raise forms.ValidationError(_("Enter an email address, like name@example.com.")) from None
        return value.lower()

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not cleaned.get("phone") and not cleaned.get("email"):
            raise forms.ValidationError(_("Enter a mobile number, an email address or both."), code="required")
        return cleaned

    def addresses(self) -> list[tuple[str, str]]:
        """(channel, address) for each channel filled in, texts first."""
        pairs = [
            (Channel.SMS.value, self.cleaned_data.get("phone")),
            (Channel.EMAIL.value, self.cleaned_data.get("email")),
        ]
        return [(channel, address) for channel, address in pairs if address]
