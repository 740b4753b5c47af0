"""Django admin for connected accounts, vehicles and authorization attempts: read-only, no tokens.

Staff find a connection, read its health and its history, and act on it through the
actions in `admin_actions`. Nothing here is editable and no page ever renders a token: the
token fields are in no form, list or fieldset, and the detail page shows a fingerprint
(a hash, not a piece of the token).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from vehicle_auth import admin_actions
from vehicle_auth.crypto import fingerprint
from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount, Vehicle

Status = SmartcarAccount.Status
Outcome = AuthorizationAttempt.Outcome

TOKEN_FIELDS = ("access_token", "refresh_token")
# Support staff renew an account before its refresh token dies; a week gives them time.
REFRESH_WARNING = timedelta(days=7)
LATEST_ATTEMPTS = 10
SMARTCAR_MODES = (("live", _("Live")), ("test", _("Test")), ("simulated", _("Simulated")))

# Colour is never the only signal (WCAG 1.4.1): each badge has a symbol and a word, and its
# own colours keep a contrast ratio above 7:1 (WCAG AAA) whatever the admin theme.
BADGE_STYLE = (
    "display:inline-block;padding:1px 8px;border-radius:9px;font-weight:600;"
    "white-space:nowrap;color:{color};background:{background};border:1px solid {color}"
)
BADGES = {
    Status.ACTIVE: ("✓", "#0b5d1e", "#e6f4ea"),
    Status.REAUTH_REQUIRED: ("!", "#7a3e00", "#fff4e0"),
    Status.DISCONNECTED: ("○", "#3c4043", "#eceff1"),
    Outcome.SUCCEEDED: ("✓", "#0b5d1e", "#e6f4ea"),
    Outcome.PENDING: ("…", "#0d3c86", "#e8f0fe"),
    Outcome.DENIED: ("⊘", "#3c4043", "#eceff1"),
    Outcome.FAILED: ("!", "#8c0b0b", "#fce8e6"),
    Outcome.EXPIRED: ("⏱", "#3c4043", "#eceff1"),
}
WARNING_BADGE = ("!", "#7a3e00", "#fff4e0")


def badge(key: str, label: str, badge_colours: tuple[str, str, str] | None = None) -> SafeString:
    """A coloured pill holding a symbol and a word; the word alone says everything."""
    symbol, color, background = badge_colours or BADGES.get(key, ("•", "#3c4043", "#eceff1"))
    return format_html(
        '<span class="vehicle-auth-badge vehicle-auth-badge-{}" style="{}">'
        '<span aria-hidden="true">{}</span> {}</span>',
        key,
        BADGE_STYLE.format(color=color, background=background),
        symbol,
        label,
    )


def admin_link(obj: Any, text: Any = None, *, site: str = "admin") -> SafeString | str:
    """A link to `obj`'s admin page, or plain text where that model has none."""
    opts = obj._meta
    try:
        url = reverse(f"{site}:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return str(text if text is not None else obj)
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


def duration_text(started: datetime | None, ended: datetime | None) -> str:
    """How long an attempt took, for people: "4.2 s", "3 min 5 s", "2 h 10 min"."""
    if started is None or ended is None:
        return "—"
    seconds = max(0.0, (ended - started).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class ReadOnlyAdminMixin:
    """Records are written by the linking flow and the token service, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Filters --------------------------------------------------------------------------------


class ModeFilter(admin.SimpleListFilter):
    """Smartcar's three modes, listed without a query for the distinct values."""

    title = _("mode")
    parameter_name = "mode"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return SMARTCAR_MODES

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(mode=self.value()) if self.value() else queryset


class RefreshExpiryFilter(admin.SimpleListFilter):
    title = _("refresh token")
    parameter_name = "refresh_expiry"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("soon", _("Expires within 7 days")), ("expired", _("Expired")))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "soon":
            return queryset.filter(
                status=Status.ACTIVE,
                refresh_expires_at__gt=now,
                refresh_expires_at__lte=now + REFRESH_WARNING,
            )
        if self.value() == "expired":
            return queryset.filter(refresh_expires_at__lte=now)
        return queryset


class HasErrorFilter(admin.SimpleListFilter):
    title = _("has an error")
    parameter_name = "has_error"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("yes", _("Yes")), ("no", _("No")))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        has_error = ~Q(last_error_code="") | ~Q(last_error="")
        if self.value() == "yes":
            return queryset.filter(has_error)
        if self.value() == "no":
            return queryset.exclude(has_error)
        return queryset


# --- Accounts -------------------------------------------------------------------------------


class TokenlessChangeList(ChangeList):
    """The changelist never loads (and so never decrypts) a token: it shows none."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        return super().get_queryset(request, exclude_parameters).defer(*TOKEN_FIELDS)


class VehicleInline(admin.TabularInline):
    model = Vehicle
    fields = ("smartcar_id", "make", "model", "year", "vin", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SmartcarAccount)
class SmartcarAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "site_user",
        "smartcar_user_id",
        "status_badge",
        "vehicle_count",
        "access_expires_at",
        "refresh_expiry",
        "last_refreshed_at",
        "error_summary",
        "created_at",
    )
    list_display_links = ("site_user",)
    list_filter = ("status", ModeFilter, RefreshExpiryFilter, HasErrorFilter)
    search_fields = (
        "user__username",
        "user__email",
        "smartcar_user_id",
        "vehicles__make",
        "vehicles__model",
        "vehicles__vin",
        "vehicles__smartcar_id",
    )
    search_help_text = _(
        "Site username or email, Smartcar user id, or a vehicle's make, model, VIN or id."
    )
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    list_per_page = 100
    # Every field is listed here, so the token fields can never reach a page or a form.
    fieldsets = (
        (
            _("Connection"),
            {
                "fields": (
                    "site_user_link",
                    "smartcar_user_id",
                    "status_badge",
                    "mode",
                    "scopes",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (
            _("Tokens"),
            {
                "description": _(
                    "Tokens are never shown. A fingerprint (a hash) tells two tokens apart."
                ),
                "fields": (
                    "access_token_fingerprint",
                    "access_expires_at",
                    "refresh_token_fingerprint",
                    "refresh_expiry",
                    "last_refreshed_at",
                    "refresh_not_before",
                ),
            },
        ),
        (_("Last error"), {"fields": ("last_error_code", "last_error")}),
    )
    exclude = TOKEN_FIELDS
    inlines = (VehicleInline,)
    actions = (
        admin_actions.refresh_tokens_now,
        admin_actions.verify_connection,
        admin_actions.disconnect_accounts,
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # A correlated count, not a JOIN + GROUP BY: it stays right when a search on
        # vehicles joins the same table, and costs nothing extra per row.
        count = (
            Vehicle.objects.filter(account=OuterRef("pk"))
            .order_by()
            .values("account")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .select_related("user")
            .annotate(
                vehicle_total=Coalesce(Subquery(count, output_field=IntegerField()), Value(0))
            )
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return TokenlessChangeList

    # Deleting a live account would leave its grant at Smartcar unrevoked: disconnect it
    # (which revokes first). A disconnected one holds nothing and may go, also when its
    # site user is deleted (the admin asks this for every object a deletion cascades to).
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None or obj.status != Status.DISCONNECTED:
            return False
        return super().has_delete_permission(request, obj)

    def has_refresh_tokens_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.refresh_tokens")

    def has_verify_connection_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.verify_connection")

    def has_disconnect_account_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.disconnect_account")

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: SmartcarAccount | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self._attempts_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _attempts_context(self, request: HttpRequest, account: SmartcarAccount) -> dict[str, Any]:
        """The owner's latest attempts, failed ones included (those have no account)."""
        if not self.admin_site.is_registered(AuthorizationAttempt):
            return {}
        if not self.admin_site.get_model_admin(AuthorizationAttempt).has_view_permission(request):
            return {}
        attempts = list(
            AuthorizationAttempt.objects.filter(user_id=account.user_id).order_by(
                "-created_at", "-pk"
            )[:LATEST_ATTEMPTS]
        )
        changelist = reverse(f"{self.admin_site.name}:vehicle_auth_authorizationattempt_changelist")
        return {
            "latest_attempts": [
                {
                    "attempt": attempt,
                    "link": admin_link(attempt, attempt.created_at, site=self.admin_site.name),
                    "outcome": outcome_badge(attempt),
                    "duration": duration_text(attempt.created_at, attempt.completed_at),
                    "this_account": attempt.account_id == account.pk,
                }
                for attempt in attempts
            ],
            "latest_attempts_limit": LATEST_ATTEMPTS,
            "all_attempts_url": f"{changelist}?user__id__exact={account.user_id}",
        }

    @admin.display(description=_("site user"), ordering="user__username")
    def site_user(self, obj: SmartcarAccount) -> str:
        return str(obj.user)

    @admin.display(description=_("site user"))
    def site_user_link(self, obj: SmartcarAccount) -> SafeString | str:
        user = obj.user
        email = getattr(user, "email", "")
        text = f"{user} <{email}>" if email else str(user)
        return admin_link(user, text, site=self.admin_site.name)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: SmartcarAccount) -> SafeString:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description=_("vehicles"), ordering="vehicle_total")
    def vehicle_count(self, obj: SmartcarAccount) -> int:
        return obj.vehicle_total

    @admin.display(description=_("refresh token expires"), ordering="refresh_expires_at")
    def refresh_expiry(self, obj: SmartcarAccount) -> SafeString | str:
        expires = obj.refresh_expires_at
        if expires is None:
            return "—"
        when = display_for_value(expires, "—")
        if obj.status != Status.ACTIVE:
            return when
        left = expires - timezone.now()
        if left <= timedelta(0):
            return format_html("{} {}", badge("expired", _("Expired"), WARNING_BADGE), when)
        if left <= REFRESH_WARNING:
            days = left.days
            text = (
                ngettext("Expires in %(days)d day", "Expires in %(days)d days", days)
                % {"days": days}
                if days
                else _("Expires today")
            )
            return format_html("{} {}", badge("expiring", text, WARNING_BADGE), when)
        return when

    @admin.display(description=_("last error"), ordering="last_error_code")
    def error_summary(self, obj: SmartcarAccount) -> SafeString | str:
        if not obj.last_error_code and not obj.last_error:
            return "—"
        return format_html(
            '<span title="{}"><strong>{}</strong> {}</span>',
            obj.last_error,
            obj.last_error_code,
            Truncator(obj.last_error).chars(60),
        )

    @admin.display(description=_("access token fingerprint"))
    def access_token_fingerprint(self, obj: SmartcarAccount) -> str:
        return fingerprint(obj.access_token)

    @admin.display(description=_("refresh token fingerprint"))
    def refresh_token_fingerprint(self, obj: SmartcarAccount) -> str:
        return fingerprint(obj.refresh_token)


# --- Vehicles -------------------------------------------------------------------------------


@admin.register(Vehicle)
class VehicleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "smartcar_id",
        "vin",
        "account_link",
        "site_user_link",
        "account_status",
        "created_at",
    )
    list_filter = ("account__status",)
    search_fields = ("make", "model", "vin", "smartcar_id", "account__user__username")
    search_help_text = _("Make, model, VIN, Smartcar vehicle id or site username.")
    list_select_related = ("account__user",)
    fields = (
        "smartcar_id",
        "make",
        "model",
        "year",
        "vin",
        "account_link",
        "site_user_link",
        "account_status",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer(*(f"account__{f}" for f in TOKEN_FIELDS))

    # Deleting a car here would not revoke it at Smartcar; disconnecting the account does.
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None or obj.account.status != Status.DISCONNECTED:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description=_("account"), ordering="account__smartcar_user_id")
    def account_link(self, obj: Vehicle) -> SafeString | str:
        return admin_link(obj.account, obj.account.smartcar_user_id, site=self.admin_site.name)

    @admin.display(description=_("site user"), ordering="account__user__username")
    def site_user_link(self, obj: Vehicle) -> SafeString | str:
        return admin_link(obj.account.user, site=self.admin_site.name)

    @admin.display(description=_("account status"), ordering="account__status")
    def account_status(self, obj: Vehicle) -> SafeString:
        return badge(obj.account.status, obj.account.get_status_display())


# --- Authorization attempts -----------------------------------------------------------------


def outcome_badge(attempt: AuthorizationAttempt) -> SafeString:
    return badge(attempt.outcome, attempt.get_outcome_display())


@admin.register(AuthorizationAttempt)
class AuthorizationAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "site_user",
        "outcome_display",
        "error_code",
        "short_description",
        "duration",
        "account_link",
    )
    list_filter = ("outcome", "error_code", ModeFilter)
    search_fields = ("user__username", "user__email")
    search_help_text = _("Site username or email.")
    date_hierarchy = "created_at"
    list_select_related = ("user", "account")
    # The state and session hashes mean nothing to staff and are left out on purpose.
    fields = (
        "site_user_link",
        "outcome_display",
        "error_code",
        "error_description",
        "mode",
        "scopes",
        "next_url",
        "created_at",
        "expires_at",
        "consumed_at",
        "completed_at",
        "duration",
        "account_link",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer(*(f"account__{f}" for f in TOKEN_FIELDS))

    # The audit trail is not edited by hand, so there is no bulk delete. A single attempt
    # holds no secret and no grant, so whoever holds the delete permission may remove it;
    # refusing would also stop the admin from deleting any site user who ever linked a car.
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None and super().has_delete_permission(request, obj)

    @admin.display(description=_("user"), ordering="user__username")
    def site_user(self, obj: AuthorizationAttempt) -> str:
        return str(obj.user)

    @admin.display(description=_("user"))
    def site_user_link(self, obj: AuthorizationAttempt) -> SafeString | str:
        return admin_link(obj.user, site=self.admin_site.name)

    @admin.display(description=_("outcome"), ordering="outcome")
    def outcome_display(self, obj: AuthorizationAttempt) -> SafeString:
        return outcome_badge(obj)

    @admin.display(description=_("error description"))
    def short_description(self, obj: AuthorizationAttempt) -> str:
        return Truncator(obj.error_description).chars(80) or "—"

    @admin.display(description=_("took"))
    def duration(self, obj: AuthorizationAttempt) -> str:
        return duration_text(obj.created_at, obj.completed_at)

    @admin.display(description=_("resulting account"), ordering="account")
    def account_link(self, obj: AuthorizationAttempt) -> SafeString | str:
        if obj.account is None:
            return "—"
        return admin_link(obj.account, obj.account.smartcar_user_id, site=self.admin_site.name)
