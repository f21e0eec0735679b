"""A whole-tree (or one-patient) rescan: every file no document row names gets registered."""

from __future__ import annotations

import gc
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import accumulate, chain, groupby
from operator import attrgetter
from pathlib import Path

import structlog
from sqlalchemy import Engine

from atoz_watcher.db import queries
from atoz_watcher.ingest.registrar import Candidate, Gone, Plan, Registered, Registrar, Skipped
from atoz_watcher.ingest.resolver import adopt
from atoz_watcher.ingest.scan import FolderEntry, list_files, walk_folders
from atoz_watcher.rules import naming
from atoz_watcher.rules.ignore import DEFAULT_IGNORE, IGNORED, IgnoreRules
from atoz_watcher.rules.layout import folder_name, letter_folder, patient_dir
from atoz_watcher.rules.matching import (
    FolderMatch,
    PatientRow,
    Unmatched,
    match_folder,
    trailing_pat_num,
)
from atoz_watcher.system.contained import LinkRefusedError
from atoz_watcher.system.memory import release_free_memory

log = structlog.get_logger("atoz_watcher.rescan")

UNREADABLE_FOLDER = "unreadable-folder"
# A folder the walk listed that was gone when it came to it: renamed (or deleted) meanwhile. Its
# files are left for the next rescan, which finds the folder under its new name.
FOLDER_VANISHED = "folder-vanished"
# A letter or patient folder that is a link: never followed (it could lead out of the tree),
# listed as unmatched and counted.
LINK = "link"
# A file written to within the last ``min_age_s``: perhaps still being written. A rescan leaves
# it; the daemon hands it to its stability check, the command says to run again.
TOO_RECENT = "still-being-written"
DEFAULT_RULES = IgnoreRules(DEFAULT_IGNORE)
# Separates the packed names: no file or folder name on disk can hold it.
_SEP = "\0"


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
# What a snapshot says of a folder: its patient's PatNum, whether the folder is still to be
# adopted, and the FileNames of that patient's documents; or why the folder is nobody's.
Found = tuple[int, bool, Collection[str]] | Unmatched
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
    # ``known`` holds only the patients of the letter folder being walked (Rescanner._by_letter).
    lazy: bool = False

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

    def lookup(self, letter: str, name: str) -> Found:
        owner = self.owners.get(name)
        if owner is not None and owner[0] == letter:
            pat_num = owner[1].pat_num
            return pat_num, False, self.known.get(pat_num, ())
        match = self.match(letter, name)
        if isinstance(match, Unmatched):
            return match
        pat_num = match.patient.pat_num
        return pat_num, match.adopt, self.known.get(pat_num, ())

    def patient(self, pat_num: int) -> PatientRow:
        return self.by_num[pat_num]

    def adopted(self, pat_num: int, name: str) -> None:
        """Record an adoption, so the snapshot packed from this one stays true."""
        owned = replace(self.by_num[pat_num], image_folder=name)
        self.by_num[pat_num] = owned
        self.by_folder[name] = [owned]
        self.add_owner(name, [owned])


# The packed form as large strings and byte strings only (see _Packed.from_rows): the keys
# joined, their ends, the PatNums and adopt flags, the file names joined, their ends (int64s),
# and the ambiguous folder names joined.
_Parts = tuple[str, bytes, bytes, bytes, str, bytes, str]


def _pack(patients: Iterable[PatientRow], files: Iterable[tuple[int, str]]) -> _Parts:
    """The packed form of a ``_Snapshot.build`` of the same rows: see ``_Packed``."""
    owner: dict[str, int] = {}  # ImageFolder -> its patient, or -1 where several share it
    unfiled: list[tuple[str, int]] = []  # (the folder Open Dental would compute, PatNum)
    for row in patients:
        if row.image_folder:
            owner[row.image_folder] = -1 if row.image_folder in owner else row.pat_num
        else:
            unfiled.append((folder_name(row.lname, row.fname, row.pat_num), row.pat_num))
    entries: list[tuple[str, int, bool]] = [
        (f"{letter_folder(name)}{_SEP}{name}", pat_num, False)
        for name, pat_num in owner.items()
        if pat_num >= 0 and _SEP not in name
    ]
    # match_folder adopts only there: no owner, and the name ends with its PatNum.
    entries.extend(
        (f"{letter_folder(name)}{_SEP}{name}", pat_num, True)
        for name, pat_num in unfiled
        if name not in owner and trailing_pat_num(name) == pat_num and _SEP not in name
    )
    del unfiled
    entries.sort()
    wanted = {pat_num for _, pat_num, _ in entries}
    known: dict[int, list[str]] = defaultdict(list)
    for pat_num, file_name in files:
        if pat_num in wanted and _SEP not in file_name:
            known[pat_num].append(file_name)
    joined = [_SEP.join(known.get(pat_num, ())) for _, pat_num, _ in entries]
    del known
    return (
        "".join(entry[0] for entry in entries),
        array("q", accumulate(len(entry[0]) for entry in entries)).tobytes(),
        array("q", (entry[1] for entry in entries)).tobytes(),
        bytes(entry[2] for entry in entries),
        "".join(joined),
        array("q", accumulate(map(len, joined))).tobytes(),
        _SEP.join(name for name, pat_num in owner.items() if pat_num < 0 and _SEP not in name),
    )


class _Packed:
    """A whole-tree ``_Snapshot`` packed for keeping between rescans: the same answers, exact,
    in a handful of large objects instead of about ten small ones per patient (a kept
    ``_Snapshot`` costs ~950 bytes a patient, this ~50 plus the names' characters).

    One entry per folder a patient can own, sorted by letter folder, NUL, folder name (the
    order in which ``walk_folders`` walks the tree: NUL sorts before every other character):
    the folder of each ImageFolder only one patient has, and the folder Open Dental would compute
    for each patient whose ImageFolder is still empty (to be adopted). Each entry holds the
    PatNum and that patient's FileNames, joined by NUL. Everything else is unmatched, for
    the reason ``match_folder`` would give: ambiguous, the wrong letter folder, or no patient.
    Names holding NUL (only the database can have them) are left out: no name on disk can
    equal them.
    """

    def __init__(self, parts: _Parts) -> None:
        keys, key_ends, pat_nums, adopt, files, file_ends, ambiguous = parts
        self._keys = keys
        self._key_ends = array("q", key_ends)
        self._pat_nums = array("q", pat_nums)
        self._adopt = bytearray(adopt)
        self._files = files
        self._file_ends = array("q", file_ends)
        self._ambiguous = frozenset(ambiguous.split(_SEP)) if ambiguous else frozenset()
        # Lookups come in walk order: the next entry is nearly always the one asked for.
        self._next = 0
        self._last_key = ""

    @classmethod
    def from_rows(cls, patients: Iterable[PatientRow], files: Iterable[tuple[int, str]]) -> _Packed:
        """Packed straight from the rows (streamed: see ``queries.all_patients``).

        Everything made on the way (a few small objects per patient) is gone before the packed
        form's own objects are made: a long-lived object made among them would keep the memory
        they took (CPython frees its small-object arenas only when they are empty).
        """
        return cls(_pack(patients, files))

    def __len__(self) -> int:
        return len(self._pat_nums)

    def _key(self, index: int) -> str:
        start = self._key_ends[index - 1] if index else 0
        return self._keys[start : self._key_ends[index]]

    def _find(self, key: str) -> int:
        """The entry of ``key``, or -1. Every entry before ``_next`` sorts at or before
        ``_last_key``, so a key after that one is searched for only from ``_next`` on."""
        count = len(self._key_ends)
        low = self._next if key > self._last_key else 0
        self._last_key = key
        if low < count and self._key(low) == key:  # the walk's next folder: the common case
            self._next = low + 1
            return low
        high = count
        while low < high:
            middle = (low + high) // 2
            if self._key(middle) < key:
                low = middle + 1
            else:
                high = middle
        self._next = low
        if low < count and self._key(low) == key:
            self._next = low + 1
            return low
        return -1

    def lookup(self, letter: str, name: str) -> Found:
        index = self._find(f"{letter}{_SEP}{name}")
        if index < 0:
            if name in self._ambiguous:
                return Unmatched.AMBIGUOUS
            if letter != letter_folder(name):
                return Unmatched.WRONG_LETTER
            return Unmatched.NO_PATIENT
        start = self._file_ends[index - 1] if index else 0
        names = self._files[start : self._file_ends[index]]
        known = set(names.split(_SEP)) if names else ()
        return self._pat_nums[index], bool(self._adopt[index]), known

    def patient(self, pat_num: int) -> PatientRow:
        """The patient to adopt a folder for: only the PatNum is kept, and only the PatNum is
        read (``folders.adopt`` sets ImageFolder where it is still empty)."""
        return PatientRow(pat_num, "", "", "")

    def adopted(self, pat_num: int, name: str) -> None:
        """Record an adoption (which only a lookup that found an entry can lead to)."""
        index = self._find(f"{letter_folder(name)}{_SEP}{name}")
        if index >= 0 and self._pat_nums[index] == pat_num:
            self._adopt[index] = 0


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
        ignore: IgnoreRules = DEFAULT_RULES,
        min_age_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        keep: bool = True,
    ) -> None:
        self._engine = engine
        # False for a Rescanner run once (``atoz-watcher rescan``): nothing is kept for a next
        # run, so the whole tables are never read; each letter folder's patients' FileNames
        # are read when the walk reaches it.
        self._keep = keep
        self._ignore = ignore
        self._min_age_s = min_age_s
        self._clock = clock
        self._registrar = registrar
        self._root = root
        self._batch_size = batch_size
        self._progress = progress
        self._report = report
        # The last whole-tree snapshot, packed, and the tables' fingerprint when it was read: a
        # daemon's periodic rescan of an unchanged tree reuses it instead of reading every name
        # again. Packed, because the daemon keeps it for good (an hour between rescans).
        self._kept: tuple[tuple[object, ...], _Packed] | None = None

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
        summary, packed = self._run(pat_num, dry_run=dry_run, should_stop=should_stop)
        if packed:
            # Give back what reading the whole tables made and the pass freed (the full
            # snapshot, the rows, the folder list), which the process would otherwise hold
            # until the next such pass, tens of MB on a large tree: a full collection also
            # empties the interpreter's free lists, whose few objects keep otherwise empty
            # arenas, and the C allocator keeps freed pages until trimmed. (A pass on a kept
            # snapshot makes little to give back and is not slowed down by this.)
            gc.collect()
            release_free_memory()
        return summary

    def _run(
        self, pat_num: int | None, *, dry_run: bool, should_stop: Callable[[], bool]
    ) -> tuple[Summary, bool]:
        """The pass itself; True with it when it read the tables afresh and kept them packed."""
        snapshot, fingerprint = self._snapshot(pat_num)
        summary = Summary()
        folders = self._folders(pat_num, snapshot, summary)
        total = 0
        if self._progress is not None:  # a count to show: the command, not the daemon
            folders = list(folders)
            total = len(folders)
        pending: list[Candidate] = []
        walk = chain.from_iterable(self._by_letter(folders, snapshot))
        for done, folder in enumerate(walk, start=1):
            if should_stop():
                break
            self._scan_folder(folder, snapshot, summary, pending, dry_run=dry_run)
            if len(pending) >= self._batch_size:
                self._flush(pending, summary, dry_run=dry_run)
            if self._progress is not None:
                self._progress(done, total)
        self._flush(pending, summary, dry_run=dry_run)
        if fingerprint is None or not isinstance(snapshot, _Packed):
            return summary, False
        # Kept after the walk, so that it includes the folders adopted on the way.
        self._kept = (fingerprint, snapshot)
        return summary, True

    def _by_letter(
        self, folders: Iterable[FolderEntry], snapshot: _Snapshot | _Packed
    ) -> Iterator[list[FolderEntry]]:
        """The folders a letter folder at a time; for a snapshot read without FileNames (not
        kept), those of the patients whose folders these are are read first."""
        for _, group in groupby(folders, key=attrgetter("letter")):
            letter = list(group)
            if isinstance(snapshot, _Snapshot) and snapshot.lazy:
                owners = {
                    found[0]
                    for folder in letter
                    if not isinstance(
                        found := snapshot.lookup(folder.letter, folder.name), Unmatched
                    )
                }
                with self._engine.connect() as conn:
                    snapshot.known = queries.known_names(conn, pat_nums=owners)
            yield letter

    def _snapshot(
        self, pat_num: int | None
    ) -> tuple[_Snapshot | _Packed, tuple[object, ...] | None]:
        """The snapshot for this run, and the fingerprint to keep it under (None: not kept)."""
        with self._engine.connect() as conn:
            if pat_num is not None:
                row = queries.patient(conn, pat_num=pat_num)
                known = queries.file_names(conn, pat_nums=[pat_num])
                return _Snapshot.build([] if row is None else [row], known), None
            if not self._keep:
                # The patients only (a few columns a patient); FileNames a letter at a time.
                with _gc_paused():
                    snapshot = _Snapshot.build(list(queries.all_patients(conn)), {})
                snapshot.lazy = True
                return snapshot, None
            # Read before the rows: a change made while they are read changes the next
            # fingerprint, so a kept snapshot is never older than its fingerprint says.
            fingerprint = queries.tables_fingerprint(conn)
            if self._kept is not None and self._kept[0] == fingerprint:
                return self._kept[1], None
            self._kept = None  # stale: not kept alive while its successor is read
            with _gc_paused():
                packed = _Packed.from_rows(queries.all_patients(conn), queries.all_file_names(conn))
        return packed, fingerprint

    def _folders(
        self, pat_num: int | None, snapshot: _Snapshot | _Packed, summary: Summary
    ) -> Iterable[FolderEntry]:
        """The folders to scan. The whole tree is walked a letter folder at a time (the
        daemon's 40,000 folders are never all held at once). Ignored folders (#recycle,
        @eaDir) are no one's: not even reported as unmatched."""

        def skipped(letter: FolderEntry, exc: OSError) -> None:
            if not self._ignore((letter.letter,)):
                self._folder_skipped(letter, exc, summary)

        if pat_num is None or not isinstance(snapshot, _Snapshot):
            walk = walk_folders(self._root, on_unlisted=skipped)  # RootUnusableError
            return (f for f in walk if not self._ignore((f.letter, f.name)))
        row = snapshot.by_num.get(pat_num)
        if row is None:
            return []
        name = row.image_folder or folder_name(row.lname, row.fname, row.pat_num)
        path = patient_dir(self._root, name)

        def skipped_here(letter: FolderEntry, exc: OSError) -> None:
            if Path(letter.path) in {path, path.parent}:
                skipped(letter, exc)

        walk = walk_folders(self._root, on_unlisted=skipped_here)
        return [f for f in walk if Path(f.path) == path and not self._ignore((f.letter, f.name))]

    def _folder_skipped(self, folder: FolderEntry, exc: OSError, summary: Summary) -> None:
        """A (letter or patient) folder that could not be listed: counted, named in the
        summary and logged; its files wait for the next rescan."""
        gone = isinstance(exc, FileNotFoundError | NotADirectoryError)
        if isinstance(exc, LinkRefusedError):
            reason = LINK
        else:
            reason = FOLDER_VANISHED if gone else UNREADABLE_FOLDER
        summary.skipped[reason] += 1
        where = f"{folder.letter}/{folder.name}" if folder.name else folder.letter
        summary.unmatched.append((where, reason))
        log.warning(
            "folder.skipped",
            path=folder.path,
            reason=reason,
            detail=exc.strerror or type(exc).__name__,
        )

    def _scan_folder(
        self,
        folder: FolderEntry,
        snapshot: _Snapshot | _Packed,
        summary: Summary,
        pending: list[Candidate],
        *,
        dry_run: bool,
    ) -> None:
        summary.folders += 1
        found = snapshot.lookup(folder.letter, folder.name)
        if not isinstance(found, Unmatched) and found[1]:
            match = FolderMatch(patient=snapshot.patient(found[0]), adopt=True)
            adopted = self._adopt(match, folder, summary, dry_run=dry_run)
            if isinstance(adopted, Unmatched):
                found = adopted
            elif not dry_run:
                snapshot.adopted(found[0], folder.name)
        if isinstance(found, Unmatched):
            summary.unmatched.append((f"{folder.letter}/{folder.name}", found.value))
            return
        try:
            listing = list_files(folder.path)
        except OSError as exc:
            self._folder_skipped(folder, exc, summary)
            return
        pat_num, _, known = found
        summary.files_seen += len(listing.files) + len(listing.odd)
        new = [name for name in listing.files if name not in known]
        summary.already_known += len(listing.files) - len(new)
        if not new and not listing.odd:
            return  # the common case in an unchanged tree: no Path, no Candidate
        path = Path(folder.path)
        for name, reason in listing.odd:
            summary.skipped[reason] += 1
            self._emit(Skipped(Candidate(pat_num, path, name), reason))
        pending.extend(self._takeable(pat_num, path, new, summary))

    def _takeable(
        self, pat_num: int, path: Path, names: list[str], summary: Summary
    ) -> Iterator[Candidate]:
        """The candidates among ``names``, reporting those left alone."""
        for name in names:
            candidate = Candidate(pat_num, path, name)
            # Hidden files and Thumbs.db would be skipped by the registrar too; leaving them out
            # here keeps a rescan of an unchanged tree free of database work.
            skip: str | None = naming.skip_reason(name)
            if skip is None and self._ignore((name,)):
                # NAS litter and files still being downloaded (*.part, ~$*): left alone, as the
                # watcher leaves them, even by a rescan that ran while one was being written.
                summary.skipped[IGNORED] += 1
                continue
            skip = skip or self._too_recent(candidate)
            if skip is not None:
                summary.skipped[skip] += 1
                self._emit(Skipped(candidate, skip))
                continue
            yield candidate

    def _too_recent(self, candidate: Candidate) -> str | None:
        """TOO_RECENT for a file written to within ``min_age_s`` (a scanner may still be at it:
        a rescan has seen no close, only the file). A stat per new file only."""
        if self._min_age_s <= 0:
            return None
        try:
            modified = candidate.path.stat(follow_symlinks=False).st_mtime
        except OSError:
            return None  # the registrar reports what is wrong with it
        return TOO_RECENT if self._clock() - modified < self._min_age_s else None

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
