"""`manage.py reencrypt_smartcar_tokens`: re-encrypt stored tokens with the newest key.

Key rotation: put a new key first in VEHICLE_AUTH_ENCRYPTION_KEYS (keep the old ones after
it), deploy, run this command, and only then remove the old keys.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import TextField, Value
from django.db.models.functions import Cast

from vehicle_auth import crypto
from vehicle_auth.conf import conf
from vehicle_auth.exceptions import EncryptionKeyError
from vehicle_auth.models import SmartcarAccount

DEFAULT_BATCH_SIZE = 500


def raw_token_columns() -> dict[str, Cast]:
    """The token columns as stored, ciphertext and all.

    Selecting the fields themselves would run EncryptedTextField.from_db_value (decrypt);
    a Cast has a plain TextField as its output field, so no converter touches the value.
    """
    return {
        "raw_access": Cast("access_token", output_field=TextField()),
        "raw_refresh": Cast("refresh_token", output_field=TextField()),
    }


def reencrypt_value(ciphertext: str, newest: Fernet) -> str | None:
    """`ciphertext` encrypted with the first key, or None when it already is (or is empty).

    Raises InvalidToken (or EncryptionKeyError) when no configured key can decrypt it.
    """
    if not ciphertext:
        return None
    try:
        # Only checks the HMAC: a token signed with the newest key was encrypted with it.
        newest.extract_timestamp(ciphertext.encode())
    except InvalidToken:
        return crypto.rotate(ciphertext)
    return None


def write_if_unchanged(
    pk: int, old_access: str, old_refresh: str, new_access: str, new_refresh: str
) -> bool:
    """Store new ciphertexts for account `pk` only if it still holds the old ones.

    A token refresh that saved new tokens since we read the row wins: we never put back a
    re-encryption of the tokens it replaced. Both sides of the comparison and the new
    values go through a plain TextField (Cast, Value(output_field=TextField())), because
    EncryptedTextField.get_prep_value would encrypt them again, with a fresh IV, and a
    filter like `access_token=<old ciphertext>` could then never match.
    """
    updated = (
        SmartcarAccount.objects.filter(pk=pk)
        .alias(**raw_token_columns())
        .filter(raw_access=old_access, raw_refresh=old_refresh)
        .update(
            access_token=Value(new_access, output_field=TextField()),
            refresh_token=Value(new_refresh, output_field=TextField()),
        )
    )
    return updated == 1


@dataclass
class RotationResult:
    """What one run did; lists hold account primary keys (never token values)."""

    reencrypted: int = 0
    current: int = 0
    changed_meanwhile: list[int] = field(default_factory=list)
    undecryptable: list[int] = field(default_factory=list)


def reencrypt_accounts(
    *, batch_size: int = DEFAULT_BATCH_SIZE, dry_run: bool = False
) -> RotationResult:
    """Re-encrypt every SmartcarAccount's tokens with the first configured key.

    Rows are read in primary-key order, `batch_size` at a time, each batch in its own
    transaction. Keyset pagination instead of one `.iterator()` over the table: no cursor
    stays open while we write (SQLite would let the open cursor see our own updates), and
    a long run holds no transaction or lock for longer than one batch.
    """
    problem = crypto.validate_keys(conf.ENCRYPTION_KEYS)
    if problem is not None:
        raise EncryptionKeyError(f"VEHICLE_AUTH_ENCRYPTION_KEYS cannot be used: {problem}.")
    newest = Fernet(conf.ENCRYPTION_KEYS[0])
    result = RotationResult()
    last_pk: int | None = None
    while True:
        with transaction.atomic():
            batch = SmartcarAccount.objects.order_by("pk")
            if last_pk is not None:
                batch = batch.filter(pk__gt=last_pk)
            if not dry_run:
                # On databases with row locks, a concurrent token refresh waits for this
                # batch (or we wait for it); write_if_unchanged still re-checks each row,
                # which is what keeps SQLite, without row locks, correct.
                batch = batch.select_for_update()
            rows = list(
                batch.annotate(**raw_token_columns()).values_list(
                    "pk", "raw_access", "raw_refresh"
                )[:batch_size]
            )
            for pk, old_access, old_refresh in rows:
                _reencrypt_row(result, newest, pk, old_access, old_refresh, dry_run=dry_run)
        if len(rows) < batch_size:
            return result
        last_pk = rows[-1][0]


def _reencrypt_row(
    result: RotationResult,
    newest: Fernet,
    pk: int,
    old_access: str,
    old_refresh: str,
    *,
    dry_run: bool,
) -> None:
    try:
        new_access = reencrypt_value(old_access, newest)
        new_refresh = reencrypt_value(old_refresh, newest)
    except (InvalidToken, EncryptionKeyError):
        result.undecryptable.append(pk)
        return
    if new_access is None and new_refresh is None:
        result.current += 1
        return
    if dry_run or write_if_unchanged(
        pk, old_access, old_refresh, new_access or old_access, new_refresh or old_refresh
    ):
        result.reencrypted += 1
    else:
        result.changed_meanwhile.append(pk)


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


class Command(BaseCommand):
    help = (
        "Re-encrypt every Smartcar account's tokens with the first key of "
        "VEHICLE_AUTH_ENCRYPTION_KEYS (run after putting a new key first)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Accounts per transaction (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be re-encrypted without writing anything.",
        )

    def handle(self, *args: Any, batch_size: int, dry_run: bool, **options: Any) -> None:
        try:
            result = reencrypt_accounts(batch_size=batch_size, dry_run=dry_run)
        except EncryptionKeyError as exc:
            raise CommandError(str(exc)) from exc

        for pk in result.undecryptable:
            self.stderr.write(
                f"Smartcar account {pk}: no key in VEHICLE_AUTH_ENCRYPTION_KEYS decrypts its "
                "tokens; left unchanged."
            )
        if result.changed_meanwhile:
            ids = ", ".join(str(pk) for pk in result.changed_meanwhile)
            self.stdout.write(
                f"Left {len(result.changed_meanwhile)} accounts as they are because their "
                f"tokens were refreshed during the run ({ids}); run the command again to "
                "check them."
            )
        if dry_run:
            summary = (
                f"Dry run: would re-encrypt {result.reencrypted} accounts "
                f"({result.current} already current); nothing was written."
            )
        else:
            summary = (
                f"re-encrypted {result.reencrypted} accounts ({result.current} already current)"
            )
        self.stdout.write(summary)

        if result.undecryptable:
            raise CommandError(
                f"{len(result.undecryptable)} accounts have tokens that no key in "
                "VEHICLE_AUTH_ENCRYPTION_KEYS can decrypt: put back the key that encrypted "
                "them, or have their owners connect again."
            )
