from django.conf import settings
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

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
