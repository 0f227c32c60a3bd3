from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("t/<str:token>/subscribe/", views.subscribe, name="subscribe"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("subscribe/confirm/<str:token>/", views.confirm_subscription, name="confirm_subscription"),
    path("hooks/twilio/inbound/", views.twilio_inbound, name="twilio_inbound"),
    path("hooks/twilio/status/", views.twilio_status, name="twilio_status"),
]
