from django.urls import path

from . import live, views

app_name = "shipments"

urlpatterns = [
    path("", views.home, name="home"),
    path("track/", views.lookup, name="lookup"),
    path("t/<str:token>/", views.tracking, name="tracking"),
    # Under uvicorn, asgi.py serves this path itself (shipments.live.sse_app);
    # the view is the same stream through Django.
    path("t/<str:token>/events/", live.events, name="events"),
    path("t/<str:token>/actions/", views.actions, name="actions"),
    path("t/<str:token>/instructions/", views.instructions, name="instructions"),
    path("t/<str:token>/rating/", views.rating, name="rating"),
]
