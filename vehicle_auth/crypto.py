"""Encryption of tokens at rest with Fernet; several keys for rotation, the first encrypts."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from vehicle_auth.conf import conf
from vehicle_auth.exceptions import EncryptionKeyError


class Secret(str):
    """A token in memory: a normal string, except that `repr` never shows it.

    Debug pages, log records formatting `%r` and tracebacks show locals by `repr`.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<secret {fingerprint(self)}>"


class Undecryptable(Secret):
    """What a stored token reads as when no configured key can decrypt it.

    Empty, so pages and the admin still load; anything that needs the token itself (a
    refresh, a vehicle call) refuses it with EncryptionKeyError instead of sending it.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "<undecryptable secret>"


def fingerprint(value: str) -> str:
    """A short, non-reversible tag that lets staff tell two tokens apart (not a prefix)."""
    if not value:
        return "-"
    return hashlib.sha256(value.encode()).hexdigest()[:8]


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise EncryptionKeyError(
            "VEHICLE_AUTH_ENCRYPTION_KEYS is empty: set at least one Fernet key "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')."
        )
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise EncryptionKeyError(
            "A key in VEHICLE_AUTH_ENCRYPTION_KEYS is not a valid Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from exc


def current_fernet() -> MultiFernet:
    return _fernet(tuple(conf.ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return current_fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> Secret:
    try:
        return Secret(current_fernet().decrypt(ciphertext.encode()).decode())
    except InvalidToken as exc:
        raise EncryptionKeyError(
            "A stored token cannot be decrypted with any key in VEHICLE_AUTH_ENCRYPTION_KEYS; "
            "a key that encrypted it was removed too early."
        ) from exc


def rotate(ciphertext: str) -> str:
    """Re-encrypt with the first key (MultiFernet.rotate keeps the original timestamp)."""
    try:
        return current_fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise EncryptionKeyError(
            "A stored token cannot be decrypted with any key in VEHICLE_AUTH_ENCRYPTION_KEYS."
        ) from exc


def validate_keys(keys: list[str]) -> str | None:
    """Why these keys cannot be used, or None when they can."""
    if not keys:
        return "no key is set"
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            return "a key is not a valid Fernet key"
    return None
