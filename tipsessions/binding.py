"""A session's binding to a user, as stored with the session itself.

``session.set_user(user_id)`` binds a session: its record then carries the
user id, the user's revocation epoch at that moment and a fingerprint that
names this one session in the user registry (see :mod:`tipsessions.registry`).
A cookie session carries the binding inside its signed or encrypted cookie,
so it cannot be forged; a server-side one in its stored record. An unbound
session stores nothing more.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

#: Longest user id accepted: it travels in every cookie of a bound cookie session.
MAX_USER_ID = 256

_FINGERPRINT = re.compile(r"[0-9a-f]{8}")


def new_fingerprint() -> str:
    """32 random bits: unique among one user's sessions, and shown to them."""
    # Hex, so that none starts with "-" and reads as an option on a command line.
    return secrets.token_hex(4)


def is_fingerprint(value: Any) -> bool:
    return isinstance(value, str) and _FINGERPRINT.fullmatch(value) is not None


def check_user_id(user_id: Any) -> str:
    """The user id, or TypeError / ValueError naming what is wrong with it."""
    if not isinstance(user_id, str):
        raise TypeError(f"a user id is a string, not {type(user_id).__name__}")
    if not user_id or len(user_id) > MAX_USER_ID or not user_id.isprintable():
        raise ValueError(
            f"a user id is a non-empty printable string of at most {MAX_USER_ID} characters"
        )
    return user_id


@dataclass(frozen=True)
class Binding:
    """Who a session belongs to, since which epoch, and under which fingerprint."""

    user_id: str
    #: The user's revocation epoch (milliseconds) when the session was bound:
    #: a later revocation raises the registry's above it.
    epoch: int
    fingerprint: str

    def to_json(self) -> list[Any]:
        return [self.user_id, self.epoch, self.fingerprint]

    @classmethod
    def from_json(cls, value: Any) -> Binding:
        """The binding a record holds; :class:`ValueError` for anything malformed."""
        if not isinstance(value, list) or len(value) != 3:
            raise ValueError("a user binding is [user id, epoch, fingerprint]")
        user_id, epoch, fingerprint = value
        try:
            check_user_id(user_id)
        except TypeError as error:
            raise ValueError(str(error)) from None
        if type(epoch) is not int or epoch < 0 or not is_fingerprint(fingerprint):
            raise ValueError("a user binding's epoch or fingerprint is malformed")
        return cls(user_id, epoch, fingerprint)
