"""URLs of vehicle_auth; include them under a prefix such as `vehicles/`."""

from django.urls import path

from vehicle_auth import views

app_name = "vehicle_auth"

urlpatterns = [
    path("", views.index, name="index"),
    path("login/", views.login, name="login"),
    path("callback/", views.callback, name="callback"),
    path("accounts/<int:account_id>/disconnect/", views.disconnect, name="disconnect"),
]
