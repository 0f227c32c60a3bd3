from django.contrib import admin
from django.urls import include, path

from shipments.api import api

admin.site.site_header = "Parcel tracking — support"
admin.site.site_title = "Parcel tracking"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("", include("shipments.urls")),
    path("", include("notifications.urls")),
]

# Uploads are never served from MEDIA_ROOT as a directory, not even in
# development: shipments.media serves each image through what it belongs to.
