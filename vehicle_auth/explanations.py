"""What we tell a site user about each way a trip through Connect can end badly."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from vehicle_auth.flow import CallbackResult

INVALID_STATE = {
    "missing": gettext_lazy(
        "This link is incomplete: it does not say which connection it belongs to."
    ),
    "unknown": gettext_lazy("We don't recognise this connection request."),
    "expired": gettext_lazy("This connection request has expired."),
    "used": gettext_lazy("This connection request has already been used."),
    "foreign": gettext_lazy(
        "This connection request was started in another browser session or account."
    ),
    "signed_out": gettext_lazy("You were signed out while connecting your vehicle."),
}


def invalid_state(reason: str) -> str:
    return str(INVALID_STATE.get(reason, INVALID_STATE["unknown"]))


def connect_error(result: CallbackResult) -> tuple[str, str]:
    """A title and an explanation (what happened, what to do) for a failed attempt."""
    code = result.error_code
    if result.smartcar_failure:
        return (
            _("We couldn't reach Smartcar"),
            _(
                "Smartcar did not answer as expected, so nothing was connected. "
                "Please try again in a moment."
            ),
        )
    if code == "access_denied":
        return (
            _("No vehicle was connected"),
            _("You chose not to share your vehicle. You can connect one whenever you like."),
        )
    if code == "user_manually_returned_to_application":
        return (
            _("No vehicle was connected"),
            _("You left Smartcar before connecting a vehicle. You can start again any time."),
        )
    if code == "vehicle_incompatible":
        car = " ".join(result.vehicle[k] for k in ("year", "make", "model") if k in result.vehicle)
        if car:
            text = _("Your %(car)s can't be connected through Smartcar yet.") % {"car": car}
        else:
            text = _("Your vehicle can't be connected through Smartcar yet.")
        return (
            _("This vehicle isn't compatible"),
            text + " " + _("You can try another vehicle."),
        )
    if code == "invalid_subscription":
        return (
            _("Your connected-services subscription isn't active"),
            _(
                "Your vehicle's connected services (its brand's app) need an active "
                "subscription. Activate it with your car brand, then try again."
            ),
        )
    if code == "no_vehicles":
        return (
            _("No vehicles found"),
            _(
                "We found no vehicles in that account. Add your vehicle to your car brand's "
                "app, then try again."
            ),
        )
    if code == "configuration_error":
        detail = result.error_message or ""
        return (
            _("This site's connection to Smartcar is misconfigured"),
            (detail + " " if detail else "")
            + _("This is not your fault; please try again later or contact support."),
        )
    if code == "server_error":
        return (
            _("Smartcar had a problem"),
            _("Smartcar ran into an unexpected error. Please try again in a moment."),
        )
    return (
        _("Your vehicle couldn't be connected"),
        _("Smartcar reported a problem (%(code)s). Please try again.") % {"code": code},
    )
