"""URLs of the sandbox; mount them at `sandbox/` so origins look like Smartcar's."""

from django.urls import path, re_path

from vehicle_auth.sandbox import api, connect, token

app_name = "vehicle_auth_sandbox"

urlpatterns: list = [
    # Connect screens
    path("oauth/authorize", connect.authorize, name="authorize"),
    path("connect/<slug:key>/", connect.preamble, name="connect-preamble"),
    path("connect/<slug:key>/brands/", connect.brands, name="connect-brands"),
    path("connect/<slug:key>/login/", connect.login, name="connect-login"),
    path("connect/<slug:key>/grant/", connect.grant, name="connect-grant"),
    path("connect/<slug:key>/exit/", connect.exit_connect, name="connect-exit"),
    # token + API (paths accept a trailing slash, as Smartcar's do)
    re_path(r"^oauth/token/?$", token.token, name="token"),
    re_path(r"^v2\.0/user/?$", api.user, name="api-user"),
    re_path(r"^v2\.0/vehicles/?$", api.vehicles, name="api-vehicles"),
    re_path(r"^v2\.0/vehicles/(?P<vehicle_id>[^/]+)/?$", api.attributes, name="api-attributes"),
    re_path(r"^v2\.0/vehicles/(?P<vehicle_id>[^/]+)/vin/?$", api.vin, name="api-vin"),
    re_path(
        r"^v2\.0/vehicles/(?P<vehicle_id>[^/]+)/permissions/?$",
        api.permissions,
        name="api-permissions",
    ),
    re_path(
        r"^v2\.0/vehicles/(?P<vehicle_id>[^/]+)/odometer/?$", api.odometer, name="api-odometer"
    ),
    re_path(
        r"^v2\.0/vehicles/(?P<vehicle_id>[^/]+)/application/?$",
        api.disconnect,
        name="api-disconnect",
    ),
    re_path(r"^v2\.0/", api.not_found, name="api-not-found"),
    re_path(r"^v[0-9]+\.[0-9]+/", api.unsupported_version, name="api-unsupported-version"),
]
