"""Django app configuration of vehicle_auth."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VehicleAuthConfig(AppConfig):
    name = "vehicle_auth"
    verbose_name = _("Connected vehicles")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vehicle_auth import checks  # noqa: F401 - registers the system checks
        from vehicle_auth.receivers import connect_receivers

        connect_receivers()
