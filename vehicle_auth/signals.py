"""Signals vehicle_auth sends, each with the model class as `sender`.

Receivers run after the change is committed, so they may call Smartcar or enqueue work.
"""

from django.dispatch import Signal

# A site user linked a Smartcar account for the first time.
# kwargs: account (SmartcarAccount), user, attempt (AuthorizationAttempt)
account_linked = Signal()

# A site user linked an already linked Smartcar account again: tokens, scopes and
# vehicles were replaced by the new grant's.
# kwargs: account, user, attempt, added_vehicle_ids (list[str]), removed_vehicle_ids (list[str])
account_updated = Signal()

# A site user disconnected an account: access was revoked at Smartcar and tokens destroyed.
# kwargs: account, user, revoked (bool: False when Smartcar could not be told)
account_unlinked = Signal()

# An account's tokens were refreshed.  kwargs: account
tokens_refreshed = Signal()

# Smartcar refused the account's refresh token: the owner must link again.
# kwargs: account, error_code (str)
reauthorization_required = Signal()
