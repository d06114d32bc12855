"""The sample's user directory: two demo users and their API tokens.

A real application keeps users in a database; what matters here is how the
session is handled once a password or a token checks out. Passwords are
stored as PBKDF2 hashes and compared in constant time even so, because
samples get copied. A changed password is kept in the running application
(its ``registry``) only: a restart brings the demo passwords back.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import MutableMapping
from dataclasses import dataclass

_ITERATIONS = 100_000


def _hash(password: str, salt: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), _ITERATIONS)


@dataclass(frozen=True)
class Account:
    email: str
    name: str
    password_hash: bytes
    api_token: str


def _account(email: str, name: str, password: str, api_token: str) -> Account:
    return Account(email, name, _hash(password, email), api_token)


#: The demo users; the login page shows their passwords.
ACCOUNTS = {
    account.email: account
    for account in (
        _account("ada@example.com", "Ada", "lovelace", "ada-demo-token"),
        _account("alan@example.com", "Alan", "turing", "alan-demo-token"),
    )
}


#: Where an application keeps the password hashes changed since it started.
CHANGED_PASSWORDS = "sample_app.changed_passwords"


def check_password(
    email: str, password: str, changed: MutableMapping[str, bytes] | None = None
) -> Account | None:
    """The account when ``password`` is right for ``email``, else None.

    ``changed`` holds the hashes of passwords changed since the start.
    """
    account = ACCOUNTS.get(email.strip().lower())
    # Hash even for an unknown email, so timing does not reveal which exist.
    candidate = _hash(password, account.email if account else "unknown")
    if account is None:
        return None
    expected = (changed or {}).get(account.email, account.password_hash)
    return account if hmac.compare_digest(candidate, expected) else None


def change_password(
    email: str, current: str, new: str, changed: MutableMapping[str, bytes]
) -> bool:
    """Replace the password of ``email`` when ``current`` is right; False otherwise."""
    account = check_password(email, current, changed)
    if account is None or not new:
        return False
    changed[account.email] = _hash(new, account.email)
    return True


def account_for_token(token: str) -> Account | None:
    """The account an API token belongs to, else None."""
    for account in ACCOUNTS.values():
        if token and hmac.compare_digest(token.encode(), account.api_token.encode()):
            return account
    return None
