"""`reencrypt_smartcar_tokens`: key rotation of the stored tokens."""

import uuid
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from vehicle_auth.management.commands.reencrypt_smartcar_tokens import (
    raw_token_columns,
    write_if_unchanged,
)
from vehicle_auth.models import SmartcarAccount

pytestmark = pytest.mark.django_db

NEW_KEY = "lb_kx2QKGdFSLV_TnTXVbco72q2kn7SkQQ8tZt2tGo8="  # test-only
FOREIGN_KEY = "BxSX2Q0cXtsFNHXYnvhMwgv4UklRhYTJr2LB-6pcNPM="  # test-only, never configured


def rotated_keys() -> list[str]:
    """A new key put first, the suite's keys kept after it: step one of a rotation."""
    return [NEW_KEY, *settings.VEHICLE_AUTH_ENCRYPTION_KEYS]


def make_account(access: str | None = None, refresh: str | None = None) -> SmartcarAccount:
    user = get_user_model().objects.create_user(f"driver-{uuid.uuid4().hex[:8]}")
    return SmartcarAccount.objects.create(
        user=user,
        smartcar_user_id=str(uuid.uuid4()),
        mode="test",
        access_token=str(uuid.uuid4()) if access is None else access,
        refresh_token=str(uuid.uuid4()) if refresh is None else refresh,
    )


def raw_tokens(pk: int) -> tuple[str, str]:
    table = connection.ops.quote_name(SmartcarAccount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT access_token, refresh_token FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()


def decrypt_with(key: str, ciphertext: str) -> str:
    return Fernet(key).decrypt(ciphertext.encode()).decode()


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("reencrypt_smartcar_tokens", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_afterwards_every_token_decrypts_with_the_new_key_alone() -> None:
    accounts = [make_account() for _ in range(3)]
    disconnected = make_account(access="", refresh="")

    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=rotated_keys()):
        out, err = run()

    assert "re-encrypted 3 accounts (1 already current)" in out
    assert err == ""
    for account in accounts:
        raw_access, raw_refresh = raw_tokens(account.pk)
        assert decrypt_with(NEW_KEY, raw_access) == account.access_token
        assert decrypt_with(NEW_KEY, raw_refresh) == account.refresh_token
    assert raw_tokens(disconnected.pk) == ("", "")
    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[NEW_KEY]):
        assert SmartcarAccount.objects.get(pk=accounts[0].pk).access_token == (
            accounts[0].access_token
        )


def test_only_the_token_columns_change() -> None:
    account = make_account()
    before = SmartcarAccount.objects.values().get(pk=account.pk)

    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=rotated_keys()):
        run()
        after = SmartcarAccount.objects.values().get(pk=account.pk)

    # Every field reads the same, updated_at included: re-encrypting changes no data.
    assert after == before
    assert decrypt_with(NEW_KEY, raw_tokens(account.pk)[0]) == account.access_token


@pytest.mark.parametrize("count", [4, 5])  # a multiple of the batch size, and not
def test_many_batches_cover_every_account(count: int) -> None:
    accounts = [make_account() for _ in range(count)]

    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=rotated_keys()):
        out, _ = run("--batch-size", "2")

    assert f"re-encrypted {count} accounts (0 already current)" in out
    for account in accounts:
        assert decrypt_with(NEW_KEY, raw_tokens(account.pk)[1]) == account.refresh_token


def test_an_account_with_one_old_token_is_re_encrypted() -> None:
    account = make_account()
    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=rotated_keys()):
        # A refresh under the new key rewrote only the access token.
        SmartcarAccount.objects.filter(pk=account.pk).update(access_token="new-access")

        out, _ = run()

    raw_access, raw_refresh = raw_tokens(account.pk)
    assert "re-encrypted 1 accounts (0 already current)" in out
    assert decrypt_with(NEW_KEY, raw_access) == "new-access"
    assert decrypt_with(NEW_KEY, raw_refresh) == account.refresh_token


def test_dry_run_changes_nothing() -> None:
    account = make_account()
    before = raw_tokens(account.pk)

    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=rotated_keys()):
        out, _ = run("--dry-run")

    assert "would re-encrypt 1 accounts (0 already current)" in out
    assert "nothing was written" in out
    assert raw_tokens(account.pk) == before


def test_a_second_run_finds_everything_current_and_writes_nothing() -> None:
    make_account()
    make_account()

    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=rotated_keys()):
        first, _ = run()
        after_first = sorted(
            raw_tokens(pk) for pk in SmartcarAccount.objects.values_list("pk", flat=True)
        )
        second, _ = run()

    assert "re-encrypted 2 accounts (0 already current)" in first
    assert "re-encrypted 0 accounts (2 already current)" in second
    assert (
        sorted(raw_tokens(pk) for pk in SmartcarAccount.objects.values_list("pk", flat=True))
        == after_first
    )


def test_an_undecryptable_account_is_reported_and_the_others_are_still_done() -> None:
    good = make_account()
    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[FOREIGN_KEY]):
        lost = make_account()
    lost_before = raw_tokens(lost.pk)

    with (
        override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=rotated_keys()),
        pytest.raises(CommandError, match="1 accounts have tokens that no key") as excinfo,
    ):
        call_command(
            "reencrypt_smartcar_tokens", stdout=(out := StringIO()), stderr=(err := StringIO())
        )

    assert excinfo.value.returncode == 1
    assert f"Smartcar account {lost.pk}: no key" in err.getvalue()
    assert "re-encrypted 1 accounts (0 already current)" in out.getvalue()
    assert decrypt_with(NEW_KEY, raw_tokens(good.pk)[0]) == good.access_token
    assert raw_tokens(lost.pk) == lost_before


def test_a_token_refreshed_meanwhile_is_not_overwritten() -> None:
    account = make_account()
    old_access, old_refresh = raw_tokens(account.pk)
    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=rotated_keys()):
        new_access = Fernet(NEW_KEY).encrypt(account.access_token.encode()).decode()
        new_refresh = Fernet(NEW_KEY).encrypt(account.refresh_token.encode()).decode()
        # A token refresh saves new tokens between our read and our write.
        account.access_token, account.refresh_token = "refreshed-access", "refreshed-refresh"
        account.save(update_fields=["access_token", "refresh_token"])

        written = write_if_unchanged(account.pk, old_access, old_refresh, new_access, new_refresh)
        fresh = SmartcarAccount.objects.get(pk=account.pk)

    assert written is False
    assert fresh.access_token == "refreshed-access"
    assert fresh.refresh_token == "refreshed-refresh"


def test_an_unchanged_row_is_written() -> None:
    account = make_account()
    old_access, old_refresh = raw_tokens(account.pk)
    new_access = Fernet(NEW_KEY).encrypt(b"access").decode()
    new_refresh = Fernet(NEW_KEY).encrypt(b"refresh").decode()

    assert write_if_unchanged(account.pk, old_access, old_refresh, new_access, new_refresh)
    assert raw_tokens(account.pk) == (new_access, new_refresh)


@pytest.mark.parametrize("keys", [[], ["not-a-key"]])
def test_unusable_keys_stop_the_command(keys: list[str]) -> None:
    make_account()

    with (
        override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=keys),
        pytest.raises(CommandError, match="VEHICLE_AUTH_ENCRYPTION_KEYS cannot be used"),
    ):
        run()


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(CommandError, match="must be at least 1"):
        run("--batch-size", "0")


def test_the_raw_column_read_really_is_ciphertext() -> None:
    # The command reads columns through a Cast so that no field converter decrypts them.
    account = make_account()

    raw = (
        SmartcarAccount.objects.annotate(**raw_token_columns())
        .values_list("raw_access", "raw_refresh")
        .get(pk=account.pk)
    )

    assert raw == raw_tokens(account.pk)
    assert account.access_token not in raw[0]
    assert decrypt_with(settings.VEHICLE_AUTH_ENCRYPTION_KEYS[0], raw[0]) == account.access_token
