from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from . import selectors
from .models import Shipment


@require_GET
def home(request):
    return render(request, "shipments/home.html")


@require_GET
def tracking(request, token: str):
    shipment = get_object_or_404(Shipment.objects.select_related("brand"), public_token=token)
    events = list(selectors.timeline(shipment))
    response = render(request, "shipments/tracking.html", {"shipment": shipment, "events": events})
    response["Cache-Control"] = "no-store"
    return response
