"""The portal's URLs plus a trivial view: the baseline the tracking page is
measured against, on the same server, through the same middleware."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from tracking_portal.urls import urlpatterns as portal_urlpatterns


@require_GET
def trivial(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/trivial/", trivial), *portal_urlpatterns]
