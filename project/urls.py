"""URLs of the demo project: home, the site's login pages, admin, the app and the sandbox."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from project import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("vehicles/", include("vehicle_auth.urls")),
]

if getattr(settings, "SMARTCAR_SANDBOX_ENABLED", False):
    urlpatterns.append(path("sandbox/", include("vehicle_auth.sandbox.urls")))
