from django.contrib import admin
from django.urls import include, path

from pages import site
from shipments.api import api

admin.site.site_header = "Parcel tracking — support"
admin.site.site_title = "Parcel tracking"

urlpatterns = [
    path("admin/analytics/", include("analytics.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("favicon.ico", site.favicon),
    path("", include("pages.urls")),
    path("", include("notifications.urls")),
]

# A cut or mistyped tracking link: a page in the visitor's language that leads
# to the look-up (only when DEBUG is off; DEBUG shows Django's own).
handler404 = "pages.site.page_not_found"

# Uploads are never served from MEDIA_ROOT as a directory, not even in
# development: pages.media serves each image through what it belongs to.
