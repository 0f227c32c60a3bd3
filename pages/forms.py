from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from shipments.customer import DAMAGED, NOT_RECEIVED, REPORT_TEXT_MAX_LENGTH, SOMETHING_ELSE, problems_for
from shipments.statuses import Status


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


class TextareaField(forms.CharField):
    """Text from a textarea, its line breaks as one character each: browsers
    send a line break as CRLF but count it as one against the textarea's
    maxlength, so what fitted in the box would be too long here."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace("\r\n", "\n")


PROBLEM_LABELS = {
    NOT_RECEIVED: _("I have not received it"),
    DAMAGED: _("It is damaged"),
    SOMETHING_ELSE: _("Something else"),
}


class ProblemForm(forms.Form):
    """What the customer reports; "not received" is offered only for a
    parcel said to be delivered (shipments.customer.problems_for)."""

    problem = forms.ChoiceField(label=_("What is wrong?"), widget=forms.RadioSelect)
    text = TextareaField(
        label=_("Tell us more (optional)"),
        max_length=REPORT_TEXT_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=format_lazy(
            _("Up to {count} characters. Please don't write card or bank details here."), count=REPORT_TEXT_MAX_LENGTH
        ),
    )

    def __init__(self, *args, status: Status, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["problem"].choices = [(problem, PROBLEM_LABELS[problem]) for problem in problems_for(status)]
