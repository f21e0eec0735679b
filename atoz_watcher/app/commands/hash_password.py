"""``atoz-watcher hash-password``: the argon2id hash of a password, for ``[[ui.users]]``.

The password is read from the terminal (twice, unechoed), or once from standard input when
that is not a terminal (a script, a test); only the hash is printed. The password never goes
to a log line, the command line or the environment.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from atoz_watcher.app.commands.common import EXIT_OK
from atoz_watcher.errors import ArgumentError

# Imported where it hashes: the other commands need no argon2 (see the note in app.cli).
if TYPE_CHECKING:
    from argon2 import PasswordHasher

Prompt = Callable[[str], str]


def run_hash_password(
    stdin: TextIO,
    stdout: TextIO,
    *,
    prompt: Prompt = getpass.getpass,
    hasher: PasswordHasher | None = None,
) -> int:
    """Print the hash of the password typed (twice) at the terminal, or read from stdin."""
    password = _from_terminal(prompt) if stdin.isatty() else _from_pipe(stdin)
    if not password:
        raise ArgumentError("an empty password is refused: type one")
    from argon2 import PasswordHasher  # noqa: PLC0415 - see the note at the top

    stdout.write((hasher or PasswordHasher()).hash(password) + "\n")
    return EXIT_OK


def _from_terminal(prompt: Prompt) -> str:
    password = prompt("Password: ")
    if not password:
        return password
    if prompt("Password again: ") != password:
        raise ArgumentError("the two passwords differ; nothing was printed, try again")
    return password


def _from_pipe(stdin: TextIO) -> str:
    # One line: the newline that ends it is not part of the password.
    return stdin.readline().removesuffix("\n").removesuffix("\r")
