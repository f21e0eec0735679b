"""Who may log in to the page: the ``[[ui.users]]`` names, their argon2 hashes, their roles."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from atoz_watcher.config.sections import UiUser


@dataclass(frozen=True, slots=True)
class User:
    name: str
    may_move: bool  # role "staff"; a viewer may look, never move files


class Users:
    """``check(name, password)``: the user, or None for a wrong name or password.

    An unknown name costs one verification too, against a hash made at start with the first
    user's parameters, so how long a refusal takes does not tell a name that exists from one
    that does not.
    """

    def __init__(self, users: list[UiUser]) -> None:
        self._users = {user.name: user for user in users}
        hasher = PasswordHasher()
        if users:
            # A hash argon2 cannot read: that user can never log in; the decoy keeps the
            # default parameters.
            with contextlib.suppress(InvalidHashError):
                hasher = PasswordHasher.from_parameters(extract_parameters(users[0].password_hash))
        self._hasher = hasher
        self._decoy = hasher.hash(secrets.token_urlsafe(16))

    def __bool__(self) -> bool:
        return bool(self._users)

    def check(self, name: str, password: str) -> User | None:
        """The user ``name`` when ``password`` is theirs. Blocking (tens of milliseconds of
        argon2 by design): call it from a thread."""
        user = self._users.get(name)
        digest = user.password_hash if user is not None else self._decoy
        try:
            self._hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None:
            return None
        return User(user.name, may_move=user.role == "staff")
