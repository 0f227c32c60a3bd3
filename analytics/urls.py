from django.urls import path

from .dashboard import dashboard_view

app_name = "analytics"

urlpatterns = [path("", dashboard_view, name="dashboard")]
