"""The demo project's URLs plus `bench/redirect/`, the baseline of the throughput benchmark."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path

from project.urls import urlpatterns as project_urlpatterns


def redirect(request: HttpRequest) -> HttpResponse:
    """Only redirect: what any Django view costs on this server, and nothing more."""
    return HttpResponseRedirect("https://connect.smartcar.com/oauth/authorize")


urlpatterns = [
    path("bench/redirect/", redirect, name="bench-redirect"),
    # The same behind Django's sign-in check: the session and user every signed-in page loads.
    path("bench/redirect-signed-in/", login_required(redirect), name="bench-redirect-signed-in"),
    *project_urlpatterns,
]
