from django.urls import path

from . import views

app_name = "shipments"

urlpatterns = [
    path("", views.home, name="home"),
    path("t/<str:token>/", views.tracking, name="tracking"),
]
