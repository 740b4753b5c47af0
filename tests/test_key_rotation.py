"""Rotating the token encryption key on a running site, end to end through the sandbox.

The documented procedure: put the new key first (old keys after it) and deploy; run
`reencrypt_smartcar_tokens`; only then remove the old key.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
import smartcar
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests.factories import UserFactory
from vehicle_auth import get_vehicle
from vehicle_auth.crypto import Undecryptable
from vehicle_auth.exceptions import EncryptionKeyError
from vehicle_auth.models import SmartcarAccount

pytestmark = pytest.mark.django_db(transaction=True)

OLD_KEY = "Cr0Yx0cQ4eyv0l9yb0rJ7n4Zb2Jt3q8s1rWj6cE8mOo="  # test-only keys
NEW_KEY = "q1b9c8rNm7kP3fW2xL5tH6yZ0aD4sG8jV2nB7eR1uIo="


def raw_rows() -> list[tuple[int, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, access_token, refresh_token FROM vehicle_auth_smartcaraccount ORDER BY id"
        )
        return cursor.fetchall()


def decrypts_with(key: str, ciphertext: str) -> bool:
    try:
        Fernet(key).decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


def expire(account: SmartcarAccount) -> None:
    account.access_expires_at = timezone.now() - timedelta(minutes=1)
    account.save(update_fields=["access_expires_at"])


def car_of(account: SmartcarAccount) -> str:
    return account.vehicles.order_by("pk").first().smartcar_id


@pytest.fixture
def owners(link_account, settings) -> list[tuple[object, SmartcarAccount]]:
    """Four accounts of three users, linked through the sandbox while only OLD_KEY exists."""
    settings.VEHICLE_AUTH_ENCRYPTION_KEYS = [OLD_KEY]
    ann, bob, cat = (UserFactory(username=name) for name in ("ann", "bob", "cat"))
    linked = [
        (ann, link_account(ann, email="ann@example.com")),
        (ann, link_account(ann, email="2-vehicles@smartcar.com", make="TESLA")),
        (bob, link_account(bob, email="bob@example.com")),
        (cat, link_account(cat, email="cat@example.com")),
    ]
    assert all(decrypts_with(OLD_KEY, access) for _, access, _ in raw_rows())
    return linked


def test_rotating_the_key_while_the_site_runs(owners, smartcar_sandbox, settings, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="vehicle_auth")
    before = {account.pk: (account.access_token, account.refresh_token) for _, account in owners}

    # 1. Deploy with the new key first: everything reads, new writes use the new key.
    settings.VEHICLE_AUTH_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    for user, account in owners:
        assert get_vehicle(user, car_of(account)).access_token == before[account.pk][0]
        client = Client()
        client.force_login(user)
        assert client.get("/vehicles/").status_code == 200
    ann, refreshed = owners[0]
    expire(refreshed)
    assert get_vehicle(ann, car_of(refreshed)).attributes().make == "CHEVROLET"
    refreshed.refresh_from_db()
    before[refreshed.pk] = (refreshed.access_token, refreshed.refresh_token)
    rows = {pk: (access, refresh) for pk, access, refresh in raw_rows()}
    assert decrypts_with(NEW_KEY, rows[refreshed.pk][0])
    assert not decrypts_with(NEW_KEY, rows[owners[2][1].pk][0])  # not yet rotated

    # 2. Re-encrypt everything with the new key.
    out = StringIO()
    call_command("reencrypt_smartcar_tokens", stdout=out)
    assert "re-encrypted 3 accounts (1 already current)" in out.getvalue()

    # 3. Drop the old key: every token decrypts, is unchanged and works at Smartcar.
    settings.VEHICLE_AUTH_ENCRYPTION_KEYS = [NEW_KEY]
    for user, account in owners:
        account.refresh_from_db()
        assert not isinstance(account.access_token, Undecryptable)
        assert not isinstance(account.refresh_token, Undecryptable)
        assert (account.access_token, account.refresh_token) == before[account.pk]
        assert smartcar.get_user(account.access_token).id == account.smartcar_user_id
        expire(account)
        assert get_vehicle(user, car_of(account)).attributes().year  # a refresh, then a call
    for _, access, refresh in raw_rows():
        assert decrypts_with(NEW_KEY, access)
        assert decrypts_with(NEW_KEY, refresh)
        assert not decrypts_with(OLD_KEY, access)
        assert not decrypts_with(OLD_KEY, refresh)
    assert smartcar_sandbox.request_count("token", detail="refresh_token", status=200) == 5
    assert not caplog.records  # no token was ever unreadable


def test_dropping_the_old_key_too_early_loses_nothing_once_it_is_back(
    owners, smartcar_sandbox, settings, caplog
) -> None:
    user, account = owners[2]
    settings.VEHICLE_AUTH_ENCRYPTION_KEYS = [NEW_KEY]  # the command was skipped

    loaded = SmartcarAccount.objects.get(pk=account.pk)
    assert isinstance(loaded.access_token, Undecryptable)
    with pytest.raises(EncryptionKeyError):
        get_vehicle(user, car_of(account))
    assert "cannot be decrypted" in caplog.text
    assert smartcar_sandbox.request_count("token", detail="refresh_token") == 0

    settings.VEHICLE_AUTH_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert get_vehicle(user, car_of(account)).access_token == account.access_token
