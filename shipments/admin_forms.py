"""The admin's forms: a staff member's status correction, and what staff
upload (a shipment's proof of delivery and a brand's logo). Each upload goes through shipments.images, as the API's
do, so the admin stores nothing that was not decoded and re-encoded; each
stored image is linked through a view that serves it safely, never through
MEDIA_URL."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib.admin.widgets import AdminFileWidget
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from . import images
from .labels import STATUS_CHOICES
from .models import Brand, Shipment


@dataclass(frozen=True)
class ServedFile:
    """What the widget's "Currently:" link shows: the stored name, and the
    URL of the view that serves it."""

    name: str
    url: str

    def __str__(self) -> str:
        return self.name


class ServedImageInput(AdminFileWidget):
    """An image upload whose current file links to ``served_url``."""

    def __init__(self, attrs=None):
        super().__init__({"accept": images.ACCEPT, **(attrs or {})})
        self.served_url = ""

    def format_value(self, value):
        value = super().format_value(value)
        if value is not None and self.is_initial(value) and self.served_url:
            return ServedFile(value.name.rsplit("/", 1)[-1], self.served_url)
        return value


def clean_upload(value):
    """A new upload as a clean image; anything else (the stored file, or
    False for "clear") as it came."""
    if isinstance(value, UploadedFile):
        try:
            return images.clean_image(value)
        except images.ImageRefused as refused:
            raise forms.ValidationError(str(refused), code=refused.code) from None
    return value


class ShipmentAdminForm(forms.ModelForm):
    # ShipmentAdmin's fieldsets say which fields the page shows.
    class Meta:
        model = Shipment
        fields = ["proof_received_by", "proof_photo", "proof_signature"]
        widgets = {"proof_photo": ServedImageInput(), "proof_signature": ServedImageInput()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for name, kind in (("proof_photo", "photo"), ("proof_signature", "signature")):
                if name in self.fields:
                    self.fields[name].widget.served_url = reverse(
                        "admin:shipments_shipment_proof", args=[self.instance.pk, kind]
                    )

    def clean_proof_photo(self):
        return clean_upload(self.cleaned_data.get("proof_photo"))

    def clean_proof_signature(self):
        return clean_upload(self.cleaned_data.get("proof_signature"))


class BrandAdminForm(forms.ModelForm):
    class Meta:
        model = Brand
        # BrandAdmin lists no fields, so its page shows every editable one,
        # as the admin's own default form does.
        fields = "__all__"  # noqa: DJ007
        widgets = {"logo": ServedImageInput()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "logo" in self.fields:
            self.fields["logo"].widget.served_url = self.instance.logo_src

    def clean_logo(self):
        return clean_upload(self.cleaned_data.get("logo"))


class StatusCorrectionForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_CHOICES)
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text=_("Kept in the timeline with your name.")
    )
