"""Polling that scales: one small record per patient folder, and only changed folders listed.

watchdog's ``PollingObserver`` stats every file of the tree on every pass and keeps a snapshot
of all of them: on 40,000 patient folders and 400,000 files, 5.8 s a pass on a local disk and
410-899 MB held; over a network share, 400,000 remote stats a pass. Here a pass lists the root
and the letter folders and reads each patient folder's modification time from that listing
(one ``lstat`` per patient folder, the price of knowing its time at all). It lists a patient
folder only when its time differs from the one recorded at the last pass, and every folder
once every ``full_every`` passes, for servers whose folder times lie.

Per patient folder it keeps one bytes object: its time and the names it held, each name as an
8-byte hash (not a set of strings; about 210 bytes a folder of 10 files with its dict entry,
8.3 MB for 40,000 folders), updated in place: a name whose hash the folder did not hold is new
and goes to the handler, which feeds the same stability check as native events. A hash shared
by an old and a new name (one chance in 2**64 per pair) hides the new file until the periodic
rescan, which walks the whole tree against the database anyway.

A folder's time has a coarse granularity on many filesystems (a few milliseconds on ext4, up
to 2 s on FAT, 100 ns on NTFS): a file added within the same tick just after the listing would
leave the time unchanged. So a folder listed because its time changed is listed once more at
the next pass, whatever its time says then.
"""

from __future__ import annotations

import os
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from atoz_watcher.rules.ignore import IgnoreRules
from atoz_watcher.system.fsops import is_folder

log = structlog.get_logger("atoz_watcher.watch")

Found = Callable[[str], None]  # a new file's path: hand it to the stability check


# A folder's record, one bytes object (about 120 bytes for 10 files, where an object with an
# int and an array took 230): its modification time (8 bytes), whether that time was seen at
# two passes in a row (1 byte), then the sorted 8-byte hashes of its file names.
_HEAD = 9
_SETTLED, _FRESH = b"\x01", b"\x00"


def _time(mtime_ns: int) -> bytes:
    return mtime_ns.to_bytes(8, "little", signed=True)


def _record(mtime_ns: int, names: Iterable[str], *, settled: bool) -> bytes:
    hashes = array("q", sorted({hash(name) for name in names}))
    return _time(mtime_ns) + (_SETTLED if settled else _FRESH) + hashes.tobytes()


def _names(record: bytes) -> set[int]:
    hashes = array("q")
    hashes.frombytes(record[_HEAD:])
    return set(hashes)


@dataclass(slots=True)
class PassSummary:
    folders: int = 0  # patient folders seen
    listed: int = 0  # patient folders whose files were listed
    found: int = 0  # new files handed on
    seconds: float = 0.0


def _files(path: str) -> list[str]:
    """The names of the files directly in ``path``; no stat (the entry type says)."""
    with os.scandir(path) as entries:
        return [e.name for e in entries if e.is_file(follow_symlinks=False)]


class TreePoller:
    """Lists the A-to-Z tree every ``interval`` seconds on its own thread; new files go to
    ``found``. ``start`` takes the first listing (nothing found then: the daemon's startup
    rescan covers what is already there) before the thread runs."""

    def __init__(
        self,
        root: str,
        found: Found,
        *,
        interval: float,
        ignore: IgnoreRules,
        full_every: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._root = root.rstrip(os.sep) or os.sep
        self._found = found
        self._interval = interval
        self._ignore = ignore
        self._full_every = full_every
        self._clock = clock
        self._letters: dict[str, dict[str, bytes]] = {}
        self._passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="atoz-poller", daemon=True)
        self.last = PassSummary()

    # -- life (the part of watchdog's observer interface the daemon uses) -------------------

    def start(self) -> None:
        self.poll(report=False)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        # Passes start every ``interval`` (a pass's own time is not added to the wait), with at
        # least a tenth of it between two passes when a pass outlasts it (a slow share).
        due = self._clock() + self._interval
        while not self._stop.wait(max(0.0, due - self._clock())):
            try:
                self.poll()
            except Exception:  # a pass that fails must not end polling
                log.exception("poll.failed", root=self._root)
            due = max(due + self._interval, self._clock() + self._interval / 10)

    # -- a pass -------------------------------------------------------------------------------

    @property
    def folders(self) -> int:
        """Patient folders remembered."""
        return sum(len(folders) for folders in self._letters.values())

    def poll(self, *, report: bool = True) -> PassSummary:
        """One pass over the tree; new files go to ``found`` when ``report``."""
        started = self._clock()
        full = self._full_every > 0 and self._passes > 0 and self._passes % self._full_every == 0
        self._passes += 1
        summary = PassSummary()
        try:
            letters = self._letter_folders()
        except OSError as exc:
            # Unreachable share, unmounted disk: keep what is known, try again next pass.
            log.warning("poll.root_unlistable", root=self._root, reason=exc.strerror)
            summary.seconds = self._clock() - started
            self.last = summary
            return summary
        for gone in self._letters.keys() - {letter for letter, _ in letters}:
            del self._letters[gone]
        for letter, letter_path in letters:
            known = self._letters.setdefault(letter, {})
            try:
                self._letter(letter, letter_path, known, summary, full=full, report=report)
            except OSError:  # unlistable for now: its folders are not forgotten
                continue
        summary.seconds = self._clock() - started
        self.last = summary
        return summary

    def _letter(
        self,
        letter: str,
        letter_path: str,
        known: dict[str, bytes],
        summary: PassSummary,
        *,
        full: bool,
        report: bool,
    ) -> None:
        """Bring a letter folder's records up to date (in place), listing the patient folders
        that changed. The hot loop of a pass: one ``lstat`` per folder, a dict lookup and a
        bytes comparison, nothing more for a folder whose time held (the ignore rules were
        applied when it was first seen)."""
        present: set[str] = set()
        with os.scandir(letter_path) as entries:
            for entry in entries:
                name = entry.name
                record = known.get(name)
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    if record is None and self._ignore((letter, name)):
                        continue
                    mtime_ns = entry.stat(follow_symlinks=False).st_mtime_ns
                except OSError:  # gone between the listing and the stat
                    continue
                present.add(name)
                if (
                    record is not None
                    and not full
                    and record.startswith(_time(mtime_ns) + _SETTLED)
                ):
                    continue
                updated = self._list(entry.path, record, mtime_ns, summary, report=report)
                if updated is not None:
                    known[name] = updated
        summary.folders += len(present)
        if len(present) != len(known):
            for gone in known.keys() - present:
                del known[gone]

    def _list(
        self,
        path: str,
        record: bytes | None,
        mtime_ns: int,
        summary: PassSummary,
        *,
        report: bool,
    ) -> bytes | None:
        """List a patient folder: hand on the names it did not hold; its new record."""
        try:
            names = _files(path)
        except OSError:  # vanished since the letter was listed, or unreadable: next pass
            return record
        summary.listed += 1
        if report:
            old = _names(record) if record is not None else set[int]()
            for file_name in names:
                if hash(file_name) not in old:
                    summary.found += 1
                    self._found(path + os.sep + file_name)
        unchanged = record is not None and record.startswith(_time(mtime_ns))
        return _record(mtime_ns, names, settled=unchanged)

    def _letter_folders(self) -> list[tuple[str, str]]:
        """(name, path) of the letter folders that are not ignored."""
        with os.scandir(self._root) as entries:
            return [
                (entry.name, entry.path)
                for entry in entries
                if is_folder(entry) and not self._ignore((entry.name,))
            ]
