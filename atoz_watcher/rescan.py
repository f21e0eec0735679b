"""A whole-tree (or one-patient) rescan: every file no document row names gets registered."""

from __future__ import annotations

import gc
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import Engine

from atoz_watcher import naming
from atoz_watcher.db import queries
from atoz_watcher.folders import adopt
from atoz_watcher.layout import folder_name, letter_folder, patient_dir
from atoz_watcher.matching import FolderMatch, PatientRow, Unmatched, match_folder, trailing_pat_num
from atoz_watcher.registrar import Candidate, Gone, Plan, Registered, Registrar, Skipped
from atoz_watcher.scan import FolderEntry, folder_entries, list_files

UNREADABLE_FOLDER = "unreadable-folder"


@dataclass
class Summary:
    """What a rescan saw and did; a dry run counts what it would register."""

    folders: int = 0
    files_seen: int = 0
    registered: int = 0
    already_known: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (letter/name, reason)
    adopted: list[tuple[int, str]] = field(default_factory=list)  # (PatNum, folder)


Progress = Callable[[int, int], None]
Report = Callable[[Plan | Registered | Skipped], None]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while a few hundred thousand strings and sets are
    made: none of them can form a cycle, and its passes over them cost a fifth of the read."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class _Snapshot:
    """Patients and known file names, read at the start of a rescan."""

    by_folder: dict[str, list[PatientRow]]
    by_num: dict[int, PatientRow]
    known: dict[int, set[str]]
    # folder name -> (its letter folder, its patient) where exactly one patient has that
    # ImageFolder: the answer for nearly every folder, found with one dict lookup.
    owners: dict[str, tuple[str, PatientRow]] = field(default_factory=dict)

    @classmethod
    def build(cls, patients: Sequence[PatientRow], known: dict[int, set[str]]) -> _Snapshot:
        by_folder: dict[str, list[PatientRow]] = defaultdict(list)
        for row in patients:
            if row.image_folder:
                by_folder[row.image_folder].append(row)
        snapshot = cls(by_folder, {p.pat_num: p for p in patients}, known)
        for name, rows in by_folder.items():
            snapshot.add_owner(name, rows)
        return snapshot

    def add_owner(self, name: str, rows: Sequence[PatientRow]) -> None:
        if len(rows) == 1:
            self.owners[name] = (letter_folder(name), rows[0])

    def match(self, letter: str, name: str) -> FolderMatch | Unmatched:
        owner = self.owners.get(name)
        if owner is not None and owner[0] == letter:
            return FolderMatch(patient=owner[1], adopt=False)
        candidates = list(self.by_folder.get(name, ()))
        pat_num = trailing_pat_num(name)
        if pat_num is not None and pat_num in self.by_num:
            candidates.append(self.by_num[pat_num])
        return match_folder(letter, name, candidates)

    def adopted(self, row: PatientRow, name: str) -> None:
        """Record an adoption, so a snapshot kept for the next rescan stays true."""
        owned = replace(row, image_folder=name)
        self.by_num[row.pat_num] = owned
        self.by_folder[name] = [owned]
        self.add_owner(name, [owned])


class Rescanner:
    """Walks the tree and hands unknown files to the registrar in batches."""

    def __init__(
        self,
        engine: Engine,
        registrar: Registrar,
        root: Path,
        *,
        batch_size: int,
        progress: Progress | None = None,
        report: Report | None = None,
    ) -> None:
        self._engine = engine
        self._registrar = registrar
        self._root = root
        self._batch_size = batch_size
        self._progress = progress
        self._report = report
        # The last whole-tree snapshot and the tables' fingerprint when it was read: a daemon's
        # periodic rescan of an unchanged tree reuses it instead of reading every name again.
        self._kept: tuple[tuple[object, ...], _Snapshot] | None = None

    def run(
        self,
        *,
        pat_num: int | None = None,
        dry_run: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Summary:
        """Scan, register and summarise. ``should_stop`` is asked between folders: a daemon
        told to stop finishes the batch in hand and returns early."""
        if not dry_run:
            self._registrar.recover()
        snapshot = self._snapshot(pat_num)
        folders = self._folders(pat_num, snapshot)
        summary = Summary()
        pending: list[Candidate] = []
        for done, folder in enumerate(folders, start=1):
            if should_stop():
                break
            self._scan_folder(folder, snapshot, summary, pending, dry_run=dry_run)
            if len(pending) >= self._batch_size:
                self._flush(pending, summary, dry_run=dry_run)
            if self._progress is not None:
                self._progress(done, len(folders))
        self._flush(pending, summary, dry_run=dry_run)
        return summary

    def _snapshot(self, pat_num: int | None) -> _Snapshot:
        with self._engine.connect() as conn:
            if pat_num is not None:
                row = queries.patient(conn, pat_num=pat_num)
                known = queries.file_names(conn, pat_nums=[pat_num])
                return _Snapshot.build([] if row is None else [row], known)
            # Read before the rows: a change made while they are read changes the next
            # fingerprint, so a kept snapshot is never older than its fingerprint says.
            fingerprint = queries.tables_fingerprint(conn)
            if self._kept is not None and self._kept[0] == fingerprint:
                return self._kept[1]
            with _gc_paused():
                snapshot = _Snapshot.build(queries.all_patients(conn), queries.all_file_names(conn))
        self._kept = (fingerprint, snapshot)
        return snapshot

    def _folders(self, pat_num: int | None, snapshot: _Snapshot) -> list[FolderEntry]:
        every = folder_entries(self._root)  # raises RootUnusableError
        if pat_num is None:
            return every
        row = snapshot.by_num.get(pat_num)
        if row is None:
            return []
        name = row.image_folder or folder_name(row.lname, row.fname, row.pat_num)
        path = patient_dir(self._root, name)
        return [f for f in every if Path(f.path) == path]

    def _scan_folder(
        self,
        folder: FolderEntry,
        snapshot: _Snapshot,
        summary: Summary,
        pending: list[Candidate],
        *,
        dry_run: bool,
    ) -> None:
        summary.folders += 1
        match = snapshot.match(folder.letter, folder.name)
        if isinstance(match, FolderMatch) and match.adopt:
            match = self._adopt(match, folder, summary, dry_run=dry_run)
            if isinstance(match, FolderMatch) and not dry_run:
                snapshot.adopted(match.patient, folder.name)
        if isinstance(match, Unmatched):
            summary.unmatched.append((f"{folder.letter}/{folder.name}", match.value))
            return
        try:
            listing = list_files(folder.path)
        except OSError:
            summary.skipped[UNREADABLE_FOLDER] += 1
            summary.unmatched.append((f"{folder.letter}/{folder.name}", UNREADABLE_FOLDER))
            return
        pat_num = match.patient.pat_num
        known = snapshot.known.get(pat_num, set())
        summary.files_seen += len(listing.files) + len(listing.odd)
        new = [name for name in listing.files if name not in known]
        summary.already_known += len(listing.files) - len(new)
        if not new and not listing.odd:
            return  # the common case in an unchanged tree: no Path, no Candidate
        path = Path(folder.path)
        for name, reason in listing.odd:
            summary.skipped[reason] += 1
            self._emit(Skipped(Candidate(pat_num, path, name), reason))
        for name in new:
            candidate = Candidate(pat_num, path, name)
            # Hidden files and Thumbs.db would be skipped by the registrar too; leaving them out
            # here keeps a rescan of an unchanged tree free of database work.
            skip = naming.skip_reason(name)
            if skip is not None:
                summary.skipped[skip] += 1
                self._emit(Skipped(candidate, skip))
                continue
            pending.append(candidate)

    def _adopt(
        self, match: FolderMatch, folder: FolderEntry, summary: Summary, *, dry_run: bool
    ) -> FolderMatch | Unmatched:
        """Store the folder in patient.ImageFolder, as Open Dental does on first use."""
        if not dry_run:
            adopted = adopt(self._engine, match, folder.name)
            if isinstance(adopted, Unmatched):
                return adopted
        summary.adopted.append((match.patient.pat_num, folder.name))
        return match

    def _flush(self, pending: list[Candidate], summary: Summary, *, dry_run: bool) -> None:
        if not pending:
            return
        batch: Sequence[Candidate] = list(pending)
        pending.clear()
        results = self._registrar.preview(batch) if dry_run else self._registrar.register(batch)
        for result in results:
            if isinstance(result, Plan | Registered):
                summary.registered += 1
            elif result.reason == Gone.KNOWN:
                summary.already_known += 1
            else:
                summary.skipped[result.reason] += 1
            self._emit(result)

    def _emit(self, result: Plan | Registered | Skipped) -> None:
        if self._report is not None:
            self._report(result)
