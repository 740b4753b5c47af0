"""Views of vehicle_auth (placeholder; the linking flow lands here)."""

from django.http import HttpRequest, HttpResponse


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("")


login = callback = index


def disconnect(request: HttpRequest, account_id: int) -> HttpResponse:
    return HttpResponse("")
