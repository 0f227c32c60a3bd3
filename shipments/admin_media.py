"""The admin's view of a shipment's proof of delivery: the stored image,
served as shipments.images serves every image, to staff within the brands
they see."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from .images import PROOF_CACHE_CONTROL, PROOF_FIELDS, image_response


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
