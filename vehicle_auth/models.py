"""What vehicle_auth stores: connected Smartcar accounts, their vehicles, and each trip
through Connect. Models do no network I/O."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from vehicle_auth.fields import EncryptedTextField


class SmartcarAccount(models.Model):
    """One grant: a site user's consent, through one Smartcar account, to some vehicles."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REAUTH_REQUIRED = "reauth_required", _("Reconnection required")
        DISCONNECTED = "disconnected", _("Disconnected")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="smartcar_accounts",
        verbose_name=_("user"),
    )
    smartcar_user_id = models.CharField(_("Smartcar user id"), max_length=64)
    mode = models.CharField(_("mode"), max_length=10)
    scopes = models.JSONField(_("granted scopes"), default=list, blank=True)
    access_token = EncryptedTextField(_("access token"), blank=True)
    access_expires_at = models.DateTimeField(_("access token expires"), null=True, blank=True)
    refresh_token = EncryptedTextField(_("refresh token"), blank=True)
    refresh_expires_at = models.DateTimeField(_("refresh token expires"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE
    )
    last_refreshed_at = models.DateTimeField(_("last refresh"), null=True, blank=True)
    # Smartcar asked us to wait (429 Retry-After) or failed transiently: no refresh before.
    refresh_not_before = models.DateTimeField(_("retry refresh after"), null=True, blank=True)
    last_error_code = models.CharField(_("last error code"), max_length=100, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("Smartcar account")
        verbose_name_plural = _("Smartcar accounts")
        ordering = ["-created_at", "-pk"]
        # Admin actions that call Smartcar need their own permission, not just "change".
        permissions = [
            ("refresh_tokens", _("Can refresh a Smartcar account's tokens now")),
            ("verify_connection", _("Can verify a Smartcar connection")),
            ("disconnect_account", _("Can disconnect a Smartcar account (revokes at Smartcar)")),
        ]
        indexes = [
            # The bulk refresh selects active accounts by expiry.
            models.Index(fields=["status", "access_expires_at"], name="vehicle_auth_acct_expiry"),
        ]
        constraints = [
            # Linking the same Smartcar account again updates it; it never duplicates.
            models.UniqueConstraint(
                fields=["user", "smartcar_user_id"], name="vehicle_auth_account_once_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"Smartcar account {self.smartcar_user_id} of {self.user_id}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Vehicle(models.Model):
    """A car the account's grant includes."""

    account = models.ForeignKey(
        SmartcarAccount,
        on_delete=models.CASCADE,
        related_name="vehicles",
        verbose_name=_("account"),
    )
    smartcar_id = models.CharField(_("Smartcar vehicle id"), max_length=64)
    make = models.CharField(_("make"), max_length=64, blank=True)
    model = models.CharField(_("model"), max_length=128, blank=True)
    year = models.PositiveSmallIntegerField(_("year"), null=True, blank=True)
    vin = models.CharField(_("VIN"), max_length=17, blank=True)  # only with read_vin
    created_at = models.DateTimeField(_("added at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("vehicle")
        verbose_name_plural = _("vehicles")
        ordering = ["make", "model", "year", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "smartcar_id"], name="vehicle_auth_vehicle_once_per_account"
            )
        ]

    def __str__(self) -> str:
        name = " ".join(str(part) for part in (self.year, self.make, self.model) if part)
        return name or self.smartcar_id


class AuthorizationAttempt(models.Model):
    """One trip through Connect, keyed by a hash of its `state`: the audit trail staff read."""

    class Outcome(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        DENIED = "denied", _("Denied")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="smartcar_authorization_attempts",
        verbose_name=_("user"),
    )
    # SHA-256 hex digests: the state and session key themselves are never stored.
    state_hash = models.CharField(_("state hash"), max_length=64, unique=True)
    session_hash = models.CharField(_("session hash"), max_length=64)
    next_url = models.TextField(_("next URL"), blank=True)
    scopes = models.JSONField(_("requested scopes"), default=list, blank=True)
    mode = models.CharField(_("mode"), max_length=10)
    outcome = models.CharField(
        _("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.PENDING
    )
    error_code = models.CharField(_("error code"), max_length=100, blank=True)
    error_description = models.TextField(_("error description"), blank=True)
    account = models.ForeignKey(
        SmartcarAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="authorization_attempts",
        verbose_name=_("resulting account"),
    )
    created_at = models.DateTimeField(_("started at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    # Set atomically when the callback claims the state: it can be claimed only once.
    consumed_at = models.DateTimeField(_("returned at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("authorization attempt")
        verbose_name_plural = _("authorization attempts")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "-created_at"], name="vehicle_auth_attempt_user")]

    def __str__(self) -> str:
        return f"Authorization attempt {self.pk} ({self.outcome})"
