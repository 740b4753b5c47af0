"""Is a connection alive? Ask Smartcar whom the account's access token belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from vehicle_auth import smartcar_client, tokens
from vehicle_auth.concurrency import Deadline
from vehicle_auth.exceptions import ReauthorizationRequired, SmartcarError
from vehicle_auth.models import SmartcarAccount


@dataclass(frozen=True)
class ConnectionCheck:
    """The answer to "does Smartcar still accept this account?", for staff to read."""

    account: SmartcarAccount
    ok: bool
    # Empty when ok; otherwise Smartcar's error code or one of ours: "not_active",
    # "reauth_required", "user_mismatch".
    code: str = ""
    description: str = ""
    # Set when Smartcar failed or could not be reached, so callers can stop asking it.
    error: SmartcarError | None = None


def verify_connection(
    account: SmartcarAccount, *, deadline: Deadline | None = None
) -> ConnectionCheck:
    """Call Smartcar's `/user` with the account's access token (refreshed first if expiring).

    A 401 on a token we believed fresh gets one refresh and one retry, as vehicle calls do.
    A refused refresh token marks the account `reauth_required` (tokens' own rule). Nothing
    else is written: the check only reports.
    """
    if account.status != SmartcarAccount.Status.ACTIVE:
        return ConnectionCheck(
            account,
            ok=False,
            code="not_active",
            description=f"The account is {account.get_status_display().lower()}; "
            "there is no connection to verify.",
        )
    try:
        account = tokens.refresh_if_expiring(account, deadline=deadline)
        token = account.access_token
        try:
            user_id = smartcar_client.get_user_id(token, deadline)
        except SmartcarError as exc:
            if exc.error_type != "AUTHENTICATION":
                raise
            account = tokens.refresh_if_expiring(
                account, stale_access_token=token, deadline=deadline
            )
            user_id = smartcar_client.get_user_id(account.access_token, deadline)
    except ReauthorizationRequired as exc:
        refused = exc.account if isinstance(exc.account, SmartcarAccount) else account
        return ConnectionCheck(
            refused,
            ok=False,
            code="reauth_required",
            description="Smartcar refused the refresh token: the owner must connect again.",
        )
    except SmartcarError as exc:
        return ConnectionCheck(
            account, ok=False, code=exc.code, description=exc.description, error=exc
        )
    if user_id != account.smartcar_user_id:
        return ConnectionCheck(
            account,
            ok=False,
            code="user_mismatch",
            description=f"The token belongs to Smartcar user {user_id}, "
            f"not {account.smartcar_user_id}.",
        )
    return ConnectionCheck(account, ok=True)
