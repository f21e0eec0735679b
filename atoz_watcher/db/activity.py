"""The activity log: how each document came, and what went wrong, for the front-desk page.

Open Dental's ``document`` table says what a file is, not how it arrived, and we add no table
to Open Dental's database. This log is atoz-watcher's own: a small SQLite file in ``state_dir``
(``activity.sqlite3``), written by whoever files a document (the daemon, the inbox, the API, in
one process or several: WAL and a busy timeout let them share it), read by the page.

It holds no patient names and no file contents: a DocNum, the way it came, a short detail (an
inbox rule, an API endpoint), and for problems a kind, a reason and the path as an operator
would look for it (relative to the A-to-Z root or an inbox). The daemon prunes what is older
than 30 days once a day (``prune``).

Recording never fails the work it records: a write the log cannot make (a full disk, a file
another process holds locked past the busy timeout) is logged and dropped. Writers take a
``Recorder`` (this log, or a test's), and record nothing when given None.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

import structlog

log = structlog.get_logger("atoz_watcher.activity")

FILE_NAME: Final = "activity.sqlite3"
KEEP_DAYS: Final = 30  # what the daemon keeps; older rows are pruned once a day
BUSY_TIMEOUT_S: Final = 10.0
# SQLite's limit on bound values per statement is 32766 on current builds; stay well under.
_CHUNK: Final = 500

_SCHEMA: Final = (
    (
        "CREATE TABLE IF NOT EXISTS arrival ("
        " doc_num INTEGER PRIMARY KEY, way TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',"
        " at TEXT NOT NULL)"
    ),
    "CREATE INDEX IF NOT EXISTS arrival_at ON arrival (at)",
    (
        "CREATE TABLE IF NOT EXISTS problem ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,"
        " reason TEXT NOT NULL, place TEXT NOT NULL DEFAULT '')"
    ),
    "CREATE INDEX IF NOT EXISTS problem_at ON problem (at)",
)


def _storable(value: str) -> str:
    """``value`` as SQLite can store it: a name that is not UTF-8 (a surrogate os.fsdecode kept)
    shows its bytes as escapes instead of failing the write."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


class Way(StrEnum):
    """How a document came."""

    FOLDER = "folder"  # a file dropped into a patient folder, seen by the watcher
    RESCAN = "rescan"  # found by a rescan (at start, a catch-up, the safety rescan, the command)
    INBOX = "inbox"  # filed from a scanner inbox (detail: the rule, or "assigned")
    API = "api"  # made through the Documents API (detail: the endpoint)


@dataclass(frozen=True, slots=True)
class Arrival:
    doc_num: int
    way: Way
    detail: str = ""
    at: datetime | None = None  # when it was recorded; set by the log


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # a short code: "database", "unreadable", "no-image-category", "unmatched", ...
    reason: str  # in words, for an operator
    place: str = ""  # the path relative to the A-to-Z root or an inbox; never file contents
    at: datetime | None = None  # when it happened; now when None


class Recorder(Protocol):
    """What the writers (daemon, inbox, API) need of the log."""

    def arrived(self, arrivals: Sequence[Arrival], *, at: datetime | None = None) -> None: ...
    def problem(self, problem: Problem) -> None: ...


class NoRecord:
    """A recorder that keeps nothing: for a writer built without the log (tests, tools)."""

    def arrived(self, arrivals: Sequence[Arrival], *, at: datetime | None = None) -> None:
        del arrivals, at

    def problem(self, problem: Problem) -> None:
        del problem


NO_RECORD: Final = NoRecord()


class ActivityLog:
    """The log in one SQLite file; safe to use from several threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                conn.execute(statement)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> ActivityLog:
        return cls(state_dir / FILE_NAME)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection, kept: opening one for each call and closing it cost 2-3 ms, nearly
        # all of it the close's checkpoint of the WAL, on every Upload. Idle under WAL it holds
        # no lock, so a second process (atoz-watcher api beside run) never waits on it; the
        # lock keeps this process's threads to one statement at a time.
        with self._lock:
            conn = self._current()
            try:
                with conn:
                    yield conn
            except sqlite3.Error:
                self._close()  # opened afresh by the next call
                raise

    def _current(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            try:
                # Under WAL, NORMAL commits without an fsync (a checkpoint syncs): a power cut
                # may lose the last few entries of this log, never corrupt it, and no Upload
                # waits for the disk on its account.
                conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        """Closes the kept connection (the next call opens one again)."""
        with self._lock:
            self._close()

    def arrived(self, arrivals: Sequence[Arrival], *, at: datetime | None = None) -> None:
        """Records how each of ``arrivals`` came; a DocNum recorded again keeps its first way.
        Never raises: a write that fails is logged (``activity.unrecorded``) and dropped."""
        if not arrivals:
            return
        when = (at or datetime.now()).isoformat(timespec="seconds")
        rows = [(a.doc_num, str(a.way), _storable(a.detail), when) for a in arrivals]
        try:
            with self._connect() as conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO arrival (doc_num, way, detail, at) VALUES (?, ?, ?, ?)",
                    rows,
                )
        except (sqlite3.Error, OSError) as exc:
            log.warning("activity.unrecorded", what="arrivals", count=len(rows), error=str(exc))

    def ways(self, doc_nums: Collection[int]) -> dict[int, Arrival]:
        """How each of ``doc_nums`` came, for those recorded."""
        found: dict[int, Arrival] = {}
        numbers = list(doc_nums)
        with self._connect() as conn:
            for start in range(0, len(numbers), _CHUNK):
                chunk = numbers[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for doc_num, way, detail, at in conn.execute(
                    f"SELECT doc_num, way, detail, at FROM arrival WHERE doc_num IN ({marks})",
                    chunk,
                ):
                    found[doc_num] = Arrival(doc_num, Way(way), detail, datetime.fromisoformat(at))
        return found

    def problem(self, problem: Problem) -> None:
        """Records ``problem``; never raises (as ``arrived``)."""
        when = (problem.at or datetime.now()).isoformat(timespec="seconds")
        try:
            with self._connect() as conn:
                conn.execute(
                    "INSERT INTO problem (at, kind, reason, place) VALUES (?, ?, ?, ?)",
                    (
                        when,
                        _storable(problem.kind),
                        _storable(problem.reason),
                        _storable(problem.place),
                    ),
                )
        except (sqlite3.Error, OSError) as exc:
            log.warning("activity.unrecorded", what="problem", kind=problem.kind, error=str(exc))

    def problems_since(self, since: datetime, *, limit: int = 100) -> list[Problem]:
        """The problems from ``since`` on, newest first, at most ``limit``."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT at, kind, reason, place FROM problem WHERE at >= ?"
                " ORDER BY at DESC, id DESC LIMIT ?",
                (since.isoformat(timespec="seconds"), limit),
            ).fetchall()
        return [
            Problem(kind, reason, place, datetime.fromisoformat(at))
            for at, kind, reason, place in rows
        ]

    def prune(self, before: datetime) -> int:
        """Removes what was recorded before ``before``; returns how many rows went."""
        cutoff = before.isoformat(timespec="seconds")
        with self._connect() as conn:
            gone = conn.execute("DELETE FROM arrival WHERE at < ?", (cutoff,)).rowcount
            gone += conn.execute("DELETE FROM problem WHERE at < ?", (cutoff,)).rowcount
        return gone
