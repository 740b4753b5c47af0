"""URLs of the sandbox; mount them at `sandbox/` so origins look like Smartcar's."""

from django.urls import path

from vehicle_auth.sandbox import connect

app_name = "vehicle_auth_sandbox"

urlpatterns: list = [
    # Connect screens
    path("oauth/authorize", connect.authorize, name="authorize"),
    path("connect/<slug:key>/", connect.preamble, name="connect-preamble"),
    path("connect/<slug:key>/brands/", connect.brands, name="connect-brands"),
    path("connect/<slug:key>/login/", connect.login, name="connect-login"),
    path("connect/<slug:key>/grant/", connect.grant, name="connect-grant"),
    path("connect/<slug:key>/exit/", connect.exit_connect, name="connect-exit"),
]
