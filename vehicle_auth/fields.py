"""A model field that stores text encrypted with the app's Fernet keys."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models

from vehicle_auth import crypto
from vehicle_auth.exceptions import EncryptionKeyError

logger = logging.getLogger(__name__)


class EncryptedTextField(models.TextField):
    """Holds a token: plaintext (as a `Secret`) in Python, Fernet ciphertext in the database.

    Empty strings stay empty so "no token" needs no key. Lookups other than `isnull` and
    equality with "" are meaningless on ciphertext, so do not filter on the token itself.
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if not value:
            return value
        try:
            return crypto.decrypt(value)
        except EncryptionKeyError:
            # One bad row must not break every page that lists accounts.
            logger.error("A %s value cannot be decrypted with the configured keys", self.name)
            return crypto.Undecryptable("")

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(str(value))
