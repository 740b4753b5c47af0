"""EncryptedTextField: ciphertext in the database, the token in Python, never in reprs."""

import uuid

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings

from vehicle_auth import crypto
from vehicle_auth.crypto import Undecryptable
from vehicle_auth.models import SmartcarAccount

pytestmark = pytest.mark.django_db

FIRST_KEY = "zE5wH1rGKk7ll_3ygxGmZ7aP9tAo6_hv6EvKUewR6lI="  # the first key of tests/settings.py
ACCESS = "0b6f2c1e-8d4a-4f3b-9e7c-5a1d2b3c4e5f"
REFRESH = "7e9d8c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"


def make_account(access: str = ACCESS, refresh: str = REFRESH) -> SmartcarAccount:
    user = get_user_model().objects.create_user(f"driver-{uuid.uuid4().hex[:8]}")
    return SmartcarAccount.objects.create(
        user=user,
        smartcar_user_id=str(uuid.uuid4()),
        mode="test",
        access_token=access,
        refresh_token=refresh,
    )


def raw_tokens(pk: int) -> tuple[str, str]:
    """The two token columns exactly as the database holds them."""
    table = connection.ops.quote_name(SmartcarAccount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT access_token, refresh_token FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()


def test_the_database_holds_ciphertext_never_the_token() -> None:
    account = make_account()

    raw_access, raw_refresh = raw_tokens(account.pk)

    assert ACCESS not in raw_access
    assert REFRESH not in raw_refresh
    assert Fernet(FIRST_KEY).decrypt(raw_access.encode()).decode() == ACCESS
    assert Fernet(FIRST_KEY).decrypt(raw_refresh.encode()).decode() == REFRESH


def test_reading_back_gives_the_token_as_a_secret() -> None:
    account = make_account()

    fresh = SmartcarAccount.objects.get(pk=account.pk)

    assert fresh.access_token == ACCESS
    assert fresh.refresh_token == REFRESH
    assert isinstance(fresh.access_token, crypto.Secret)
    assert list(SmartcarAccount.objects.values_list("access_token", flat=True)) == [ACCESS]


def test_saving_again_keeps_the_token_readable() -> None:
    account = make_account()
    fresh = SmartcarAccount.objects.get(pk=account.pk)

    fresh.save()  # saves the decrypted Secret: it must be encrypted once, not twice

    assert SmartcarAccount.objects.get(pk=account.pk).access_token == ACCESS


def test_an_empty_token_stays_empty_and_needs_no_key() -> None:
    account = make_account(access="", refresh="")

    assert raw_tokens(account.pk) == ("", "")
    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[]):
        fresh = SmartcarAccount.objects.get(pk=account.pk)
    assert fresh.access_token == ""
    assert fresh.refresh_token == ""
    assert SmartcarAccount.objects.filter(access_token="").get() == account


def test_repr_and_str_of_an_account_show_no_token() -> None:
    account = SmartcarAccount.objects.get(pk=make_account().pk)

    for shown in (repr(account), str(account), repr(account.access_token), repr(vars(account))):
        assert ACCESS not in shown
        assert REFRESH not in shown


def test_a_token_whose_key_was_removed_reads_as_undecryptable(caplog) -> None:
    account = make_account()

    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        loaded = SmartcarAccount.objects.get(pk=account.pk)

    # The row still loads (pages listing accounts keep working) but the token is unusable.
    assert isinstance(loaded.refresh_token, Undecryptable)
    assert loaded.refresh_token == ""
    assert "cannot be decrypted" in caplog.text
