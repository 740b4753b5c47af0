"""Template context shared by the demo's pages."""

from django.conf import settings
from django.http import HttpRequest


def demo(request: HttpRequest) -> dict[str, object]:
    return {"on_sandbox": getattr(settings, "ON_SANDBOX", False)}
