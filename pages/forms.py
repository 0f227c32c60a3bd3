from django import forms
from django.utils.translation import gettext_lazy as _


class LookupForm(forms.Form):
    tracking_number = forms.CharField(label=_("Tracking number"), max_length=64)
    postcode_or_email = forms.CharField(
        label=_("Delivery postcode or email address"),
        max_length=254,
        help_text=_("The postcode the parcel is going to, or the email address you ordered with."),
    )

    def clean_tracking_number(self):
        return self.cleaned_data["tracking_number"].strip()

    def clean_postcode_or_email(self):
        return self.cleaned_data["postcode_or_email"].strip()


class InstructionsForm(forms.Form):
    instructions = forms.CharField(
        label=_("Instructions for the driver"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("For example: leave it with the neighbour at number 5. Leave empty to remove them."),
    )


class RatingForm(forms.Form):
    score = forms.TypedChoiceField(
        label=_("How was your delivery?"),
        choices=[(n, str(n)) for n in range(5, 0, -1)],
        coerce=int,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label=_("Anything to add? (optional)"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
