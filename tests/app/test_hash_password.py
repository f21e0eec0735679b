"""`atoz-watcher hash-password` as a user runs it, and the hash it prints taken by [ui]."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from atoz_watcher.app.commands.hash_password import run_hash_password
from atoz_watcher.config.sections import UiSettings, UiUser
from atoz_watcher.errors import ArgumentError

PASSWORD = "correct horse battery staple"


def hash_password(tmp_path: Path, typed: str) -> subprocess.CompletedProcess[str]:
    """The command with ``typed`` on its standard input (a pipe, not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "atoz_watcher", "hash-password"],
        # No config, no database: the command needs neither.
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        input=typed,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.process
def test_it_prints_an_argon2id_hash_of_the_line_on_stdin(tmp_path: Path) -> None:
    done = hash_password(tmp_path, PASSWORD + "\n")

    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("$argon2id$")
    assert PasswordHasher().verify(line, PASSWORD)
    assert PASSWORD not in done.stdout + done.stderr
    # What it prints is what [[ui.users]] takes.
    user = UiSettings(users=[UiUser(name="frontdesk", password_hash=line)]).users[0]
    assert user.password_hash == line


@pytest.mark.process
def test_it_refuses_an_empty_password(tmp_path: Path) -> None:
    done = hash_password(tmp_path, "\n")

    assert done.returncode == 2
    assert done.stdout == ""
    assert "empty password" in done.stderr


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def typed(*answers: str) -> Iterator[str]:
    return iter(answers)


CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def test_at_a_terminal_it_asks_twice_and_prints_the_hash() -> None:
    answers = typed(PASSWORD, PASSWORD)
    prompts: list[str] = []

    def prompt(text: str) -> str:
        prompts.append(text)
        return next(answers)

    out = io.StringIO()
    assert run_hash_password(Terminal(), out, prompt=prompt, hasher=CHEAP) == 0

    assert prompts == ["Password: ", "Password again: "]
    assert CHEAP.verify(out.getvalue().strip(), PASSWORD)


def test_at_a_terminal_two_different_passwords_print_nothing() -> None:
    answers = typed(PASSWORD, PASSWORD + "x")
    out = io.StringIO()

    with pytest.raises(ArgumentError, match="differ"):
        run_hash_password(Terminal(), out, prompt=lambda _: next(answers), hasher=CHEAP)
    assert out.getvalue() == ""


def test_at_a_terminal_an_empty_password_is_refused_at_once() -> None:
    prompts: list[str] = []

    def prompt(text: str) -> str:
        prompts.append(text)
        return ""

    with pytest.raises(ArgumentError, match="empty"):
        run_hash_password(Terminal(), io.StringIO(), prompt=prompt, hasher=CHEAP)
    assert prompts == ["Password: "]
