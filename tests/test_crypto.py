"""Token encryption: round trip, key rotation, key errors, and secrets that never print."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from vehicle_auth import crypto
from vehicle_auth.exceptions import EncryptionKeyError

OLD_KEY = "zE5wH1rGKk7ll_3ygxGmZ7aP9tAo6_hv6EvKUewR6lI="  # the first key of tests/settings.py
NEW_KEY = "BxSX2Q0cXtsFNHXYnvhMwgv4UklRhYTJr2LB-6pcNPM="  # test-only
TOKEN = "4a7c2e9d-1b3f-4e8a-9c6d-2f5e8a1b7c3d"


def test_encrypt_then_decrypt_gives_the_token_back() -> None:
    ciphertext = crypto.encrypt(TOKEN)

    assert TOKEN not in ciphertext
    assert crypto.decrypt(ciphertext) == TOKEN
    assert isinstance(crypto.decrypt(ciphertext), crypto.Secret)


def test_encrypting_twice_gives_different_ciphertexts() -> None:
    # Fernet uses a fresh IV each time: equal tokens cannot be spotted in the table.
    assert crypto.encrypt(TOKEN) != crypto.encrypt(TOKEN)


def test_the_first_key_encrypts() -> None:
    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        ciphertext = crypto.encrypt(TOKEN)

    assert Fernet(NEW_KEY).decrypt(ciphertext.encode()).decode() == TOKEN


def test_a_value_encrypted_with_an_old_key_decrypts_once_a_new_key_is_put_first() -> None:
    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[OLD_KEY]):
        ciphertext = crypto.encrypt(TOKEN)

    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        assert crypto.decrypt(ciphertext) == TOKEN


def test_removing_the_key_that_encrypted_a_value_makes_it_unreadable() -> None:
    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[OLD_KEY]):
        ciphertext = crypto.encrypt(TOKEN)

    with (
        override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[NEW_KEY]),
        pytest.raises(EncryptionKeyError, match="cannot be decrypted"),
    ):
        crypto.decrypt(ciphertext)


def test_rotate_re_encrypts_with_the_first_key_and_keeps_the_timestamp() -> None:
    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[OLD_KEY]):
        ciphertext = crypto.encrypt(TOKEN)

    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        rotated = crypto.rotate(ciphertext)

    assert Fernet(NEW_KEY).decrypt(rotated.encode()).decode() == TOKEN
    assert Fernet(NEW_KEY).extract_timestamp(rotated.encode()) == Fernet(OLD_KEY).extract_timestamp(
        ciphertext.encode()
    )


@pytest.mark.parametrize("keys", [[], ["not-a-fernet-key"], [OLD_KEY, "too-short"]])
def test_missing_or_invalid_keys_raise_encryption_key_error(keys: list[str]) -> None:
    with override_settings(VEHICLE_AUTH_ENCRYPTION_KEYS=keys), pytest.raises(EncryptionKeyError):
        crypto.encrypt(TOKEN)


def test_encryption_key_error_is_improperly_configured() -> None:
    # Django (and host code catching ImproperlyConfigured) treats it as a settings problem.
    assert issubclass(EncryptionKeyError, ImproperlyConfigured)


def test_validate_keys_says_what_is_wrong() -> None:
    assert crypto.validate_keys([]) == "no key is set"
    assert crypto.validate_keys([OLD_KEY, "nope"]) == "a key is not a valid Fernet key"
    assert crypto.validate_keys([NEW_KEY, OLD_KEY]) is None


def test_a_value_that_is_not_fernet_ciphertext_raises_encryption_key_error() -> None:
    with pytest.raises(EncryptionKeyError):
        crypto.decrypt(TOKEN)


def test_secret_repr_never_contains_the_value() -> None:
    secret = crypto.Secret(TOKEN)

    assert secret == TOKEN
    assert str(secret) == TOKEN
    for shown in (repr(secret), f"{secret!r}", "%r" % secret, repr({"token": secret})):  # noqa: UP031
        assert TOKEN not in shown
        assert crypto.fingerprint(TOKEN) in shown


def test_fingerprint_tells_tokens_apart_without_revealing_them() -> None:
    other = "9f8e7d6c-5b4a-4321-8fed-cba987654321"
    tag = crypto.fingerprint(TOKEN)

    assert len(tag) == 8
    assert tag == crypto.fingerprint(TOKEN)
    assert tag != crypto.fingerprint(other)
    assert not TOKEN.startswith(tag)
    assert not TOKEN.endswith(tag)
    assert tag not in TOKEN
    assert crypto.fingerprint("") == "-"
