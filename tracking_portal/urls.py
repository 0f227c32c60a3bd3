from django.contrib import admin
from django.urls import include, path

from shipments.api import api
from tracking_portal import views as site_views

admin.site.site_header = "Parcel tracking — support"
admin.site.site_title = "Parcel tracking"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("favicon.ico", site_views.favicon),
    path("", include("shipments.urls")),
    path("", include("notifications.urls")),
]

# A cut or mistyped tracking link: a page in the visitor's language that leads
# to the look-up (only when DEBUG is off; DEBUG shows Django's own).
handler404 = "tracking_portal.views.page_not_found"

# Uploads are never served from MEDIA_ROOT as a directory, not even in
# development: shipments.media serves each image through what it belongs to.
