"""Shared by the commands: exit codes for success, signals, checks, a progress bar."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine, inspect

from atoz_watcher.db import queries
from atoz_watcher.db.models import REQUIRED_TABLES
from atoz_watcher.errors import ConfigError, NoSuchPatientError
from atoz_watcher.rules.layout import folder_name, patient_dir

EXIT_OK = 0
EXIT_FAILED = 1


@contextmanager
def exit_on_signals(handle_exit: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``handle_exit``; the old handlers come back afterwards."""
    # Signals can only be listened to from the main thread.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def on_signal(_signum: int, _frame: object) -> None:
        handle_exit()

    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def require_tables(engine: Engine) -> None:
    present = set(inspect(engine).get_table_names())
    missing = [name for name in REQUIRED_TABLES if name not in present]
    if missing:
        raise ConfigError(
            f"the database lacks the table(s) {', '.join(missing)}: run `atoz-watcher init-db`, "
            "or point database_url at Open Dental's database"
        )


def patient_folder(engine: Engine, root: Path, pat_num: int) -> Path:
    """The folder of patient ``pat_num`` (its ImageFolder, or the one Open Dental would make);
    NoSuchPatientError when there is no such patient."""
    with engine.connect() as conn:
        row = queries.patient(conn, pat_num=pat_num)
    if row is None:
        raise NoSuchPatientError(pat_num)
    return patient_dir(root, row.image_folder or folder_name(row.lname, row.fname, pat_num))


class ProgressBar:
    """A one-line progress bar on a terminal, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, *, label: str = "folders", width: int = 30) -> None:
        self._stream = stream
        self._label = label
        self._width = width
        self._last = 0.0
        self._shown = False

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:  # noqa: PLR2004
            return
        self._last = now
        filled = self._width * done // total if total else self._width
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{total}")
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Blank the bar's line so that a line printed now starts clean; the next update
        draws the bar again."""
        if self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()
            self._shown = False
            self._last = 0.0

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()
