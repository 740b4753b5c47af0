"""Views of vehicle_auth: parse the request, call the linking rules, render."""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from vehicle_auth import explanations, flow
from vehicle_auth.conf import conf
from vehicle_auth.exceptions import InvalidState
from vehicle_auth.models import SmartcarAccount
from vehicle_auth.ratelimit import rate_limit

MAKE = re.compile(r"^[A-Z][A-Z0-9_-]{0,39}$")
TRUE = {"1", "true", "yes", "on"}


def _render(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    context = {"base_template": conf.BASE_TEMPLATE, **context}
    return render(request, f"vehicle_auth/{template}", context, status=status)


def _safe_next(request: HttpRequest, url: str) -> str:
    """`url` when it stays on this site, else "" (no open redirects)."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""


@never_cache
@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    accounts = list(flow.visible_accounts(request.user))
    return _render(request, "index.html", {"accounts": accounts})


@never_cache
@login_required
@require_GET
@rate_limit("login")
def login(request: HttpRequest) -> HttpResponse:
    """Start linking: record an attempt and send the user to Smartcar Connect."""
    make = request.GET.get("make", "").strip().upper()
    flag = request.GET.get("single_select", "").lower()
    force = request.GET.get("force_prompt", "").lower()
    if not request.session.session_key:
        request.session.save()  # the attempt is bound to this session
    url = flow.start_authorization(
        request.user,
        request.session.session_key,
        next_url=_safe_next(request, request.GET.get("next", "")),
        make=make if MAKE.match(make) else "",
        single_select=(flag in TRUE) if flag else None,
        force_prompt=(force in TRUE) if force else None,
    )
    return HttpResponseRedirect(url)


@never_cache
@require_GET
@rate_limit("callback")  # before the sign-in check: anonymous probing counts per address
def callback(request: HttpRequest) -> HttpResponse:
    """Where Connect sends the user back, with a code or an error, and our state."""
    # Keep Connect's code and state out of anything that logs or reports this request
    # (django.request's warnings and errors carry it, and so do mail_admins and Sentry).
    params = request.GET.copy()
    request.GET = QueryDict()
    request.META["QUERY_STRING"] = ""
    if not request.user.is_authenticated:
        return _invalid_state(request, "signed_out")
    try:
        attempt = flow.claim_attempt(
            params.get("state", ""), request.user, request.session.session_key
        )
    except InvalidState as exc:
        return _invalid_state(request, str(exc))

    result = flow.complete_authorization(attempt, params)
    if result.succeeded:
        messages.success(
            request,
            ngettext(
                "Your Smartcar account is connected with %(count)d vehicle.",
                "Your Smartcar account is connected with %(count)d vehicles.",
                result.vehicle_count,
            )
            % {"count": result.vehicle_count},
        )
        destination = _safe_next(request, attempt.next_url) or reverse("vehicle_auth:index")
        return redirect(destination)

    title, explanation = explanations.connect_error(result)
    return _render(
        request,
        "connect_error.html",
        {"title": title, "explanation": explanation, "result": result},
        status=502 if result.smartcar_failure else 200,
    )


def _invalid_state(request: HttpRequest, reason: str) -> HttpResponse:
    return _render(
        request,
        "invalid_state.html",
        {"explanation": explanations.invalid_state(reason), "reason": reason},
        status=400,
    )


@login_required
@require_POST
def disconnect(request: HttpRequest, account_id: int) -> HttpResponse:
    """Revoke at Smartcar, then forget the account's tokens (owner only, POST + CSRF)."""
    account = get_object_or_404(
        SmartcarAccount.objects.exclude(status=SmartcarAccount.Status.DISCONNECTED),
        pk=account_id,
        user=request.user,
    )
    result = flow.disconnect_account(account)
    if not result.succeeded:
        messages.error(
            request,
            _(
                "Smartcar could not be told to disconnect your vehicle, so nothing was "
                "removed. Please try again in a moment."
            ),
        )
    elif not result.revoked_at_smartcar:
        messages.warning(
            request,
            _(
                "Disconnected here. Smartcar no longer accepted this connection, so you may "
                "also remove this site from your Smartcar account."
            ),
        )
    else:
        messages.success(request, _("Your vehicle was disconnected."))
    return redirect("vehicle_auth:index")
