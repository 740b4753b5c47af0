"""Admin actions on Smartcar accounts: refresh tokens now, verify the connection, disconnect.

Each calls the same functions as the rest of the app (`tokens.refresh_if_expiring`,
`health.verify_connection`, `flow.disconnect_account`), needs its own permission, and
reports one message per account. Messages never carry a token.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from vehicle_auth import flow, health, tokens
from vehicle_auth.exceptions import ReauthorizationRequired, SmartcarError, SmartcarUnavailable
from vehicle_auth.models import SmartcarAccount, Vehicle

Status = SmartcarAccount.Status

# Every account is at least one call to Smartcar made while the admin request waits, so one
# run is capped at a page of the changelist; a bigger batch is the management command's job.
MAX_ACCOUNTS_PER_ACTION = 100
# These mean Smartcar itself is failing: asking again for the next account would only make
# staff wait one more timeout each, so the rest of the batch is not attempted.
OUTAGE_CODES = frozenset({"timeout", "network_error"})

DISCONNECT_CONFIRMATION = "admin/vehicle_auth/smartcaraccount/disconnect_confirmation.html"


def account_label(account: SmartcarAccount) -> str:
    """How messages name an account: the site user and the Smartcar user id."""
    return _("%(user)s (Smartcar user %(smartcar_user_id)s)") % {
        "user": account.user,
        "smartcar_user_id": account.smartcar_user_id,
    }


def _when(value: Any) -> str:
    return formats.localize(timezone.localtime(value))


def _is_outage(error: SmartcarError) -> bool:
    if not isinstance(error, SmartcarUnavailable):
        return False
    return error.code in OUTAGE_CODES or (error.status or 0) >= 500


def _selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> list[SmartcarAccount] | None:
    """The chosen accounts with their users, or None (and a message) when too many."""
    accounts = list(
        SmartcarAccount.objects.filter(pk__in=queryset.values("pk"))
        .select_related("user")
        .order_by("-created_at", "-pk")[: MAX_ACCOUNTS_PER_ACTION + 1]
    )
    if len(accounts) > MAX_ACCOUNTS_PER_ACTION:
        modeladmin.message_user(
            request,
            _(
                "Select at most %(limit)d accounts at once: each one is a call to Smartcar "
                "while this page waits. Nothing was done."
            )
            % {"limit": MAX_ACCOUNTS_PER_ACTION},
            messages.ERROR,
        )
        return None
    return accounts


def _report_skipped(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    skipped: list[SmartcarAccount],
    outage: SmartcarError,
) -> None:
    if not skipped:
        return
    modeladmin.message_user(
        request,
        _("Not attempted, because Smartcar is failing (%(code)s); try again later: %(accounts)s")
        % {"code": outage.code, "accounts": "; ".join(account_label(a) for a in skipped)},
        messages.WARNING,
    )


def _smartcar_failure(exc: SmartcarError) -> str:
    return f"{exc.code}: {exc.description}" if exc.description else exc.code


@admin.action(description=gettext_lazy("Refresh tokens now"), permissions=["refresh_tokens"])
def refresh_tokens_now(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    """Refresh each active account's tokens whatever their expiry (a new 60-day refresh)."""
    accounts = _selected(modeladmin, request, queryset)
    if accounts is None:
        return
    for index, account in enumerate(accounts):
        label = account_label(account)
        if account.status != Status.ACTIVE:
            modeladmin.message_user(
                request,
                _("%(account)s: not refreshed, the account is %(status)s.")
                % {"account": label, "status": account.get_status_display().lower()},
                messages.WARNING,
            )
            continue
        try:
            fresh = tokens.refresh_if_expiring(account, force=True)
        except ReauthorizationRequired:
            modeladmin.message_user(
                request,
                _(
                    "%(account)s: Smartcar refused the refresh token. The account now needs "
                    "its owner to connect the car again."
                )
                % {"account": label},
                messages.ERROR,
            )
        except SmartcarError as exc:
            if exc.code == "retry_later":
                text = _(
                    "%(account)s: not refreshed, Smartcar asked us to wait %(seconds)s s "
                    "before refreshing again."
                ) % {"account": label, "seconds": exc.retry_after}
            else:
                text = _("%(account)s: not refreshed, Smartcar failed (%(error)s).") % {
                    "account": label,
                    "error": _smartcar_failure(exc),
                }
            modeladmin.message_user(request, text, messages.ERROR)
            if _is_outage(exc):
                _report_skipped(modeladmin, request, accounts[index + 1 :], exc)
                return
        else:
            modeladmin.message_user(
                request,
                _(
                    "%(account)s: tokens refreshed (access token valid until %(access)s, "
                    "refresh token until %(refresh)s)."
                )
                % {
                    "account": label,
                    "access": _when(fresh.access_expires_at),
                    "refresh": _when(fresh.refresh_expires_at),
                },
                messages.SUCCESS,
            )


@admin.action(
    description=gettext_lazy("Verify connection with Smartcar"), permissions=["verify_connection"]
)
def verify_connection(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    """Ask Smartcar whom each account's token belongs to (`/user`), and say what it answered."""
    accounts = _selected(modeladmin, request, queryset)
    if accounts is None:
        return
    for index, account in enumerate(accounts):
        label = account_label(account)
        check = health.verify_connection(account)
        if check.ok:
            modeladmin.message_user(
                request,
                _("%(account)s: connected, Smartcar accepts its token.") % {"account": label},
                messages.SUCCESS,
            )
            continue
        level = messages.WARNING if check.code == "not_active" else messages.ERROR
        modeladmin.message_user(
            request,
            _("%(account)s: not verified (%(code)s). %(description)s")
            % {"account": label, "code": check.code, "description": check.description},
            level,
        )
        if check.error is not None and _is_outage(check.error):
            _report_skipped(modeladmin, request, accounts[index + 1 :], check.error)
            return


@admin.action(
    description=gettext_lazy("Disconnect (revoke access at Smartcar)"),
    permissions=["disconnect_account"],
)
def disconnect_accounts(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> TemplateResponse | None:
    """Ask for confirmation, then revoke at Smartcar and mark each account disconnected."""
    accounts = _selected(modeladmin, request, queryset)
    if accounts is None:
        return None
    if request.POST.get("post") != "yes":
        return _confirm_disconnect(modeladmin, request, accounts)
    for index, account in enumerate(accounts):
        label = account_label(account)
        if account.status == Status.DISCONNECTED:
            modeladmin.message_user(
                request,
                _("%(account)s: already disconnected.") % {"account": label},
                messages.WARNING,
            )
            continue
        result = flow.disconnect_account(account)
        if result.succeeded and result.revoked_at_smartcar:
            modeladmin.message_user(
                request,
                _("%(account)s: disconnected; Smartcar revoked the site's access.")
                % {"account": label},
                messages.SUCCESS,
            )
        elif result.succeeded:
            modeladmin.message_user(
                request,
                _(
                    "%(account)s: disconnected here and its tokens destroyed, but Smartcar had "
                    "already refused its refresh token, so access could not be revoked there."
                )
                % {"account": label},
                messages.WARNING,
            )
        elif "*" in result.failures:
            error = result.failures["*"]
            modeladmin.message_user(
                request,
                _(
                    "%(account)s: not disconnected, Smartcar failed (%(error)s). Nothing was "
                    "changed; try again."
                )
                % {"account": label, "error": _smartcar_failure(error)},
                messages.ERROR,
            )
            if _is_outage(error):
                _report_skipped(modeladmin, request, accounts[index + 1 :], error)
                return None
        else:
            failed = ", ".join(
                f"{vehicle_id} ({_smartcar_failure(error)})"
                for vehicle_id, error in sorted(result.failures.items())
            )
            modeladmin.message_user(
                request,
                ngettext(
                    "%(account)s: not disconnected, Smartcar did not release %(count)d "
                    "vehicle: %(vehicles)s. The account keeps its tokens; try again.",
                    "%(account)s: not disconnected, Smartcar did not release %(count)d "
                    "vehicles: %(vehicles)s. The account keeps its tokens; try again.",
                    len(result.failures),
                )
                % {"account": label, "count": len(result.failures), "vehicles": failed},
                messages.ERROR,
            )
    return None


def _confirm_disconnect(
    modeladmin: admin.ModelAdmin, request: HttpRequest, accounts: list[SmartcarAccount]
) -> TemplateResponse:
    opts = modeladmin.model._meta
    vehicles: dict[int, list[Any]] = {account.pk: [] for account in accounts}
    for vehicle in (
        Vehicle.objects.filter(account__in=accounts)
        .only("pk", "account_id", "smartcar_id", "make", "model", "year")
        .order_by("account_id", "make", "model", "pk")
    ):
        vehicles[vehicle.account_id].append(vehicle)
    request.current_app = modeladmin.admin_site.name
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Disconnect these Smartcar accounts?"),
        "rows": [(account, vehicles[account.pk]) for account in accounts],
        "opts": opts,
        "app_label": opts.app_label,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, DISCONNECT_CONFIRMATION, context)
