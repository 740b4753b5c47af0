"""Django app configuration of the Smartcar sandbox."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SandboxConfig(AppConfig):
    name = "vehicle_auth.sandbox"
    label = "vehicle_auth_sandbox"
    verbose_name = _("Smartcar sandbox")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vehicle_auth.sandbox import checks  # noqa: F401 - registers the checks
