"""The sandbox's own state: registered apps, Connect trips, grants, cars, codes, tokens, faults.

It lives in the database so the sandbox works across threads and worker processes. These
tables belong to the fake Smartcar, not to the app: tokens here are plain text on purpose.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Application(models.Model):
    """A client registered with the sandbox (besides those in SMARTCAR_SANDBOX_APPLICATIONS)."""

    client_id = models.CharField(_("client id"), max_length=100, unique=True)
    client_secret = models.CharField(_("client secret"), max_length=200)
    name = models.CharField(_("name"), max_length=200, default="Sandbox application")
    redirect_uris = models.JSONField(_("redirect URIs"), default=list)

    class Meta:
        verbose_name = _("sandbox application")
        verbose_name_plural = _("sandbox applications")

    def __str__(self) -> str:
        return self.name


class ConnectSession(models.Model):
    """One trip through the sandbox's Connect screens, from /oauth/authorize to the redirect."""

    # Random, URL-safe; the screens carry it in their URLs (real Connect keeps no cookie
    # we could share with the site under test, which may be served from the same host).
    key = models.CharField(max_length=64, unique=True)
    client_id = models.CharField(max_length=100)
    redirect_uri = models.TextField()
    # As requested, `required:` prefixes kept.
    scopes = models.JSONField(default=list)
    mode = models.CharField(max_length=10)
    state = models.TextField(blank=True)
    approval_prompt = models.CharField(max_length=10, default="auto")
    make = models.CharField(max_length=40, blank=True)
    single_select = models.BooleanField(default=False)
    single_select_vin = models.CharField(max_length=17, blank=True)
    flags = models.TextField(blank=True)
    user_hint = models.TextField(blank=True)
    # Filled in once the user signs in at the brand's login screen.
    email = models.CharField(max_length=254, blank=True)
    chosen_make = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Connect session {self.pk} for {self.client_id}"


class Grant(models.Model):
    """What one Smartcar user allowed one application: scopes and cars."""

    client_id = models.CharField(max_length=100)
    user_id = models.CharField(max_length=36)  # the Smartcar user id (a UUID)
    email = models.CharField(max_length=254)
    mode = models.CharField(max_length=10)
    scopes = models.JSONField(default=list)  # granted permissions, no `required:` prefix
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Grant {self.pk}: {self.email} to {self.client_id}"


class Vehicle(models.Model):
    """A car in a grant. Disconnecting it deletes the row: the app's access to it ends."""

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="vehicles")
    vehicle_id = models.CharField(max_length=36)
    make = models.CharField(max_length=40)
    model = models.CharField(max_length=80)
    year = models.PositiveIntegerField()
    vin = models.CharField(max_length=17)
    odometer = models.FloatField(default=0)
    position = models.PositiveIntegerField(default=0)  # order in the owner's account

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["grant", "vehicle_id"], name="sandbox_vehicle_once")
        ]

    def __str__(self) -> str:
        return f"{self.year} {self.make} {self.model}"


class AuthorizationCode(models.Model):
    code = models.CharField(max_length=64, unique=True)
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE)
    redirect_uri = models.TextField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Code for grant {self.grant_id}"


class Token(models.Model):
    class Kind(models.TextChoices):
        ACCESS = "access", _("access")
        REFRESH = "refresh", _("refresh")

    token = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=7, choices=Kind.choices)
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    # Refresh tokens: when they were exchanged (they die ROTATION_GRACE seconds later).
    used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.kind} token of grant {self.grant_id}"


class Fault(models.Model):
    """A fault injected at run time into one endpoint ("*" for all)."""

    endpoint = models.CharField(max_length=20)
    latency = models.FloatField(default=0)  # seconds added before answering
    hang = models.FloatField(null=True, blank=True)  # seconds to hold the request, no answer
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    # Raw body sent with `status`; None (not "") means "the endpoint's usual error body".
    body = models.TextField(null=True, blank=True)  # noqa: DJ001
    content_type = models.CharField(max_length=100, default="application/json")
    retry_after = models.PositiveIntegerField(null=True, blank=True)
    remaining = models.PositiveIntegerField(null=True, blank=True)  # None: every request
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Fault on {self.endpoint}"


class RequestLog(models.Model):
    """Every request the sandbox answered, so tests can count calls ("exactly one refresh")."""

    endpoint = models.CharField(max_length=20)
    method = models.CharField(max_length=10)
    path = models.TextField()
    status = models.PositiveSmallIntegerField()
    detail = models.CharField(max_length=40, blank=True)  # e.g. the token grant_type
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


class RuntimeSetting(models.Model):
    """A sandbox setting changed at run time (token lifetimes, rotation grace)."""

    key = models.CharField(max_length=40, unique=True)
    value = models.JSONField()

    def __str__(self) -> str:
        return self.key
