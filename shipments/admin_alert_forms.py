"""The forms on an alert's page in the queue: a note, a message to the
customer, a resolution. They check the shape of what was sent;
shipments.alert_work keeps the rules."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .alert_models import STAFF_RESOLUTIONS, ContactTopic
from .alert_work import EMAIL, NOTE_MAX_LENGTH, SMS

CHANNEL_CHOICES = [(SMS, _("SMS")), (EMAIL, _("Email"))]


class NoteForm(forms.Form):
    text = forms.CharField(
        label=_("Note"),
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": NOTE_MAX_LENGTH}),
    )


class ChannelsWidget(forms.CheckboxSelectMultiple):
    """Checkboxes whose unavailable channels are shown disabled, so staff
    see why they cannot be chosen."""

    unavailable: frozenset[str] = frozenset()

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        if value in self.unavailable:
            option["attrs"]["disabled"] = True
        return option


class ContactForm(forms.Form):
    topic = forms.ChoiceField(label=_("Message"), choices=ContactTopic.choices)
    channels = forms.MultipleChoiceField(label=_("Send by"), choices=CHANNEL_CHOICES, widget=ChannelsWidget)

    def __init__(self, *args, available=(), **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["channels"]
        field.widget.unavailable = frozenset(value for value, _label in CHANNEL_CHOICES if value not in available)
        field.initial = list(available)
        if not available:
            field.disabled = True
            field.help_text = _("The customer left neither a phone number nor an email address.")
        self.available = frozenset(available)

    def clean_channels(self):
        channels = self.cleaned_data["channels"]
        if set(channels) - self.available:
            raise forms.ValidationError(_("The customer left no way to reach them there."))
        return channels


class ResolveForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=[("", "---------"), *STAFF_RESOLUTIONS])
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": NOTE_MAX_LENGTH}),
    )
