"""Uploaded images, served by the portal itself: nothing under MEDIA_ROOT is
served as a directory (a stored file is reached only through the object it
belongs to), so this works in production without a media server.

- ``/t/<token>/proof/<photo|signature>/``: the proof of delivery, while the
  tracking link is live and the page shows it;
- ``/brands/<slug>/logo/``: a brand's uploaded logo, public.

Every answer goes through ``shipments.images.image_response``, which the
admin's proof view (shipments/admin_media.py) shares: an image type read
from the stored file's extension (a file stored under any other extension
is never served), with ``nosniff`` and a ``sandbox`` CSP, so that even bytes
that are not the image they claim to be run nothing on the portal's origin.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from shipments.images import LOGO_CACHE_CONTROL, PROOF_CACHE_CONTROL, PROOF_FIELDS, image_response
from shipments.links import is_expired
from shipments.models import Brand

from .presenters import find_shipment, shows_proof
from .tracking import _expired as expired_page


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


@require_safe
def brand_logo(request, slug: str):
    brand = get_object_or_404(Brand.objects.only("logo"), slug=slug)
    return image_response(brand.logo, cache_control=LOGO_CACHE_CONTROL)
