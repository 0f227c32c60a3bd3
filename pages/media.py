"""Uploaded images, served by the portal itself: nothing under MEDIA_ROOT is
served as a directory (a stored file is reached only through the object it
belongs to), so this works in production without a media server.

- ``/t/<token>/proof/<photo|signature>/``: the proof of delivery, while the
  tracking link is live and the page shows it;
- ``/admin/shipments/shipment/<pk>/proof/<kind>/``: the same for staff, within
  the brands they see;
- ``/brands/<slug>/logo/``: a brand's uploaded logo, public.

Every answer is an image type read from the stored file's extension (a file
stored under any other extension is never served), with ``nosniff`` and a
``sandbox`` CSP, so that even bytes that are not the image they claim to be
run nothing on the portal's origin.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_safe

from shipments import images
from shipments.links import is_expired
from shipments.models import Brand, Shipment

from .presenters import find_shipment, shows_proof
from .tracking import _expired as expired_page

PROOF_FIELDS = {"photo": "proof_photo", "signature": "proof_signature"}

# The image as a document of its own can do nothing: no scripts, no
# plugins, no requests, no forms, a unique origin.
IMAGE_CSP = "sandbox; default-src 'none'"
# Proof belongs to one recipient: never in a shared cache, and not kept for
# long by the browser once the link may have expired.
PROOF_CACHE_CONTROL = "private, max-age=600"
# A logo's URL changes with each upload (Brand.logo_src), so it can be kept.
LOGO_CACHE_CONTROL = "public, max-age=86400"


def image_response(file: FieldFile | None, *, cache_control: str) -> HttpResponse:
    """The stored image, from the default storage, with the headers that
    keep it an image; 404 for no file, a missing file or a name whose
    extension is not one of the image types written."""
    if not file or not file.name:
        raise Http404
    content_type = images.content_type_for(file.name)
    if content_type is None:
        raise Http404
    try:
        with default_storage.open(file.name, "rb") as stored:
            content = stored.read()
    except (FileNotFoundError, OSError):
        raise Http404 from None
    response = HttpResponse(content, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = IMAGE_CSP
    response["Content-Disposition"] = "inline"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = cache_control
    return response


def proof_url(shipment: Shipment, kind: str) -> str:
    return reverse("pages:proof", args=[shipment.public_token, kind])


def brand_logo_url(brand: Brand) -> str:
    """The uploaded logo's URL, which changes with each upload."""
    return brand.logo_src if brand.logo else reverse("pages:brand_logo", args=[brand.slug])


@require_safe
def tracking_proof(request, token: str, kind: str):
    """A proof image through the tracking link: only while the link works
    (410 once it has expired, as the page answers) and the page shows proof."""
    field = PROOF_FIELDS.get(kind)
    shipment = find_shipment(token) if field else None
    if shipment is None:
        raise Http404
    if is_expired(shipment):
        return expired_page(request, shipment)
    if not shows_proof(shipment):
        raise Http404
    return image_response(getattr(shipment, field), cache_control=PROOF_CACHE_CONTROL)


def admin_proof_view(model_admin):
    """ShipmentAdmin's view of a proof image, scoped as its change list is
    (get_queryset), so staff reach only their brands' parcels."""

    def view(request, pk: int, kind: str):
        field = PROOF_FIELDS.get(kind)
        if field is None:
            raise Http404
        shipment = get_object_or_404(model_admin.get_queryset(request), pk=pk)
        if not model_admin.has_view_or_change_permission(request, shipment):
            raise PermissionDenied
        return image_response(getattr(shipment, field), cache_control=PROOF_CACHE_CONTROL)

    return view


@require_safe
def brand_logo(request, slug: str):
    brand = get_object_or_404(Brand.objects.only("logo"), slug=slug)
    return image_response(brand.logo, cache_control=LOGO_CACHE_CONTROL)
