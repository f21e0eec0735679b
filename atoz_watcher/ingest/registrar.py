"""One candidate file -> one document row, exactly once, as Open Dental's import would make it.

A batch runs under the registration lock (``db.lock``): re-read the patients' FileNames, plan
each file's final name and category, write the renames to the intent journal, rename, insert
the rows, commit, drop the journal entry. Every step re-checks what it depends on, so a batch
interrupted anywhere can be run again, or replayed from the journal, without a second row.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Self

import structlog
from sqlalchemy import Connection, Engine

from atoz_watcher.db import documents as document_table
from atoz_watcher.db import queries
from atoz_watcher.db.lock import locked_connection
from atoz_watcher.db.models import IMG_TYPE_DOCUMENT, IMG_TYPE_RADIOGRAPH
from atoz_watcher.db.rows import blank_document
from atoz_watcher.db.shape import TableShape
from atoz_watcher.errors import NoImageCategoryError
from atoz_watcher.imaging.dicom import NO_WINDOWING, Windowing, read_windowing
from atoz_watcher.rules import naming
from atoz_watcher.system.contained import Folder, LinkRefusedError, Tree
from atoz_watcher.system.journal import Intent, Journal

log = structlog.get_logger("atoz_watcher.registrar")


class Gone(StrEnum):
    """Why a file that looked new was not registered after all."""

    KNOWN = "already-registered"
    VANISHED = "vanished"
    NOT_REGULAR = "not-a-regular-file"
    UNREADABLE = "unreadable"
    RENAME_FAILED = "rename-failed"
    LINK = "link"  # the patient folder is a link (swapped in since it was listed)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file directly in a patient folder that no document row names (as far as we knew)."""

    pat_num: int
    folder: Path
    name: str

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def open_folder(self) -> AbstractContextManager[Folder]:
        """The patient folder, reached from the A-to-Z root (two folders up: ``<root>/<Letter>/
        <Folder>``) without following a link (LinkRefusedError)."""
        tree = Tree(self.folder.parents[1])
        return tree.folder(tree.parts(self.folder))


@dataclass(frozen=True, slots=True)
class Plan:
    """What registering a candidate does: its final name, category and image type."""

    candidate: Candidate
    final_name: str
    category: int
    img_type: int
    inode: int = 0  # of the file when planned; the journal checks it on replay

    @property
    def renames(self) -> bool:
        return self.final_name != self.candidate.name

    @property
    def final_path(self) -> Path:
        return self.candidate.folder / self.final_name


@dataclass(frozen=True, slots=True)
class Registered:
    plan: Plan
    doc_num: int | None


@dataclass(frozen=True, slots=True)
class Skipped:
    candidate: Candidate
    reason: str
    detail: str = ""


Result = Registered | Skipped


def img_type_for(name: str) -> int:
    """Open Dental files a ``.dcm`` as a Radiograph, everything else as a Document."""
    return IMG_TYPE_RADIOGRAPH if name.lower().endswith(".dcm") else IMG_TYPE_DOCUMENT


def plan_one(
    candidate: Candidate,
    *,
    categories: Collection[naming.ImageCategory],
    taken: Callable[[str], bool],
) -> Plan | Skipped:
    """Decide a candidate's final name and category (pure apart from ``taken``)."""
    reason = naming.skip_reason(candidate.name)
    if reason is not None:
        return Skipped(candidate, reason)
    prefix = naming.parse_prefix(candidate.name)
    final: str | None = candidate.name
    number = None
    if prefix is not None:
        reason = naming.final_name_reason(prefix.rest)
        if reason is not None:
            return Skipped(candidate, reason)
        final = naming.collision_free_name(prefix.rest, taken)
        number = prefix.number
    if final is None:
        return Skipped(candidate, naming.Skip.TOO_LONG, "no free x-name within 255 chars")
    category = naming.category_for(number, categories)
    if category is None:
        raise NoImageCategoryError
    return Plan(candidate, final, category, img_type_for(final))


class Folders:
    """The patient folders of one batch, each opened once (from the root, following no link)
    and held until the batch ends: every step on a file goes through its folder's descriptor,
    so a folder swapped for a link meanwhile is never entered."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._open: dict[Path, Folder | OSError] = {}

    def of(self, candidate: Candidate) -> Folder:
        """The candidate's folder; raises what opening it raised (the same for the batch)."""
        found = self._open.get(candidate.folder)
        if found is None:
            try:
                found = self._stack.enter_context(candidate.open_folder())
            except OSError as exc:
                found = exc
            self._open[candidate.folder] = found
        if isinstance(found, OSError):
            raise found
        return found

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def rename_noreplace(src: Path, dst: Path, *, folder: Folder) -> None:
    """Rename ``src`` to ``dst``, both in ``folder`` (open), never replacing a file."""
    folder.rename_noreplace(src.name, dst.name)


def _readable(folder: Folder, name: str) -> bool:
    """May this user read ``name`` in ``folder``?"""
    return os.access(name, os.R_OK, dir_fd=folder.fd, follow_symlinks=False)


def _check_file(candidate: Candidate, folders: Folders) -> Gone | int:
    """The file's inode number, or why it cannot be registered."""
    try:
        folder = folders.of(candidate)
        info = folder.lstat(candidate.name)
        readable = _readable(folder, candidate.name)
    except FileNotFoundError:
        return Gone.VANISHED
    except LinkRefusedError:
        return Gone.LINK
    except OSError:
        return Gone.UNREADABLE
    if not stat.S_ISREG(info.st_mode):
        return Gone.NOT_REGULAR
    if not readable:
        return Gone.UNREADABLE
    return info.st_ino


def plan_batch(
    candidates: Sequence[Candidate],
    *,
    categories: Collection[naming.ImageCategory],
    known: Mapping[int, Collection[str]],
    folders: Folders,
) -> list[Plan | Skipped]:
    """Plan a batch: names already in the database are skipped, names planned earlier in the
    batch count as taken, and so does every name on disk."""
    planned: dict[tuple[int, Path], set[str]] = {}
    results: list[Plan | Skipped] = []
    for candidate in candidates:
        names = known.get(candidate.pat_num, ())
        if candidate.name in names:
            results.append(Skipped(candidate, Gone.KNOWN))
            continue
        mine = planned.setdefault((candidate.pat_num, candidate.folder), set())
        folder = candidate.folder

        def taken(
            name: str, names: Collection[str] = names, mine: set[str] = mine, folder: Path = folder
        ) -> bool:
            return name in names or name in mine or os.path.lexists(folder / name)

        outcome = plan_one(candidate, categories=categories, taken=taken)
        if isinstance(outcome, Plan):
            inode = _check_file(candidate, folders)
            if isinstance(inode, Gone):
                outcome = Skipped(candidate, inode)
            else:
                mine.add(outcome.final_name)
                outcome = replace(outcome, inode=inode)
        results.append(outcome)
    return results


class Registrar:
    """Registers candidate files, in batches, exactly once."""

    def __init__(
        self,
        engine: Engine,
        journal: Journal,
        *,
        lock_timeout_s: int = 60,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._engine = engine
        self._journal = journal
        self._lock_timeout_s = lock_timeout_s
        self._now = now
        self._shape: TableShape | None = None

    # -- public -------------------------------------------------------------------------------

    def register(self, candidates: Sequence[Candidate]) -> list[Result]:
        """Register a batch; returns one result per candidate, in order."""
        if not candidates:
            return []
        with self._locked() as conn, Folders() as folders:
            self._replay_journal(conn)
            categories = queries.image_categories(conn)
            known = queries.file_names(conn, pat_nums={c.pat_num for c in candidates})
            plans = plan_batch(candidates, categories=categories, known=known, folders=folders)
            results = self._execute(conn, plans, known, folders)
        for result in results:
            _log_result(result)
        return results

    def recover(self) -> list[Registered]:
        """Replay what a crashed or failed batch left in the journal."""
        with self._locked() as conn:
            return self._replay_journal(conn)

    def preview(self, candidates: Sequence[Candidate]) -> list[Plan | Skipped]:
        """What ``register`` would do now, changing nothing (``rescan --dry-run``)."""
        with self._engine.connect() as conn:
            categories = queries.image_categories(conn)
            known = queries.file_names(conn, pat_nums={c.pat_num for c in candidates})
            conn.rollback()
        with Folders() as folders:
            return plan_batch(candidates, categories=categories, known=known, folders=folders)

    # -- steps --------------------------------------------------------------------------------

    def _locked(self) -> AbstractContextManager[Connection]:
        return locked_connection(self._engine, timeout_s=self._lock_timeout_s)

    def _table(self, conn: Connection) -> TableShape:
        if self._shape is None:
            self._shape = TableShape.reflect(conn, "document")
        return self._shape

    def _execute(
        self,
        conn: Connection,
        plans: list[Plan | Skipped],
        known: Mapping[int, Collection[str]],
        folders: Folders,
    ) -> list[Result]:
        intents = {id(p): _intent(p) for p in plans if isinstance(p, Plan) and p.renames}
        entry = self._journal.write(list(intents.values())) if intents else None
        results: list[Result] = []
        inserts: list[Plan] = []
        for plan in plans:
            if isinstance(plan, Skipped):
                results.append(plan)
                continue
            rows = known.get(plan.candidate.pat_num, ())
            done = self._rename(plan, rows, folders) if plan.renames else plan
            if entry is not None and isinstance(done, Plan) and done.final_name != plan.final_name:
                # The name was taken between plan and rename: the journal must name the one used.
                intents[id(plan)] = _intent(done)
                entry = self._journal.write(list(intents.values()), replacing=entry)
            if isinstance(done, Plan):
                inserts.append(done)
                results.append(Registered(done, None))
            else:
                results.append(done)
        self._insert(conn, inserts, folders)
        conn.commit()
        if entry is not None:
            self._journal.remove(entry)
        return self._with_doc_nums(conn, results)

    def _rename(self, plan: Plan, rows: Collection[str], folders: Folders) -> Plan | Skipped:
        """Rename without ever replacing a file; a name taken meanwhile gets another ``x``
        (free on disk and among the patient's ``rows``)."""
        while True:
            try:
                folder = folders.of(plan.candidate)
                rename_noreplace(plan.candidate.path, plan.final_path, folder=folder)
            except FileExistsError:
                free = naming.collision_free_name("x" + plan.final_name, _taken(plan, rows))
                if free is None:
                    return Skipped(plan.candidate, naming.Skip.TOO_LONG)
                plan = replace(plan, final_name=free)
            except FileNotFoundError:
                return Skipped(plan.candidate, Gone.VANISHED)
            except LinkRefusedError:
                return Skipped(plan.candidate, Gone.LINK)
            except OSError as exc:
                detail = exc.strerror or errno.errorcode.get(exc.errno or 0, "")
                return Skipped(plan.candidate, Gone.RENAME_FAILED, detail)
            else:
                return plan

    def _insert(self, conn: Connection, plans: Sequence[Plan], folders: Folders) -> None:
        if not plans:
            return
        shape = self._table(conn)
        now = self._now().replace(microsecond=0)
        rows = [document_row(p, now=now, windowing=_windowing(p, folders)) for p in plans]
        document_table.insert_many(conn, shape=shape, rows=rows)

    def _with_doc_nums(self, conn: Connection, results: list[Result]) -> list[Result]:
        plans = [r.plan for r in results if isinstance(r, Registered)]
        if not plans:
            return results
        nums = queries.doc_nums(
            conn,
            pat_nums={p.candidate.pat_num for p in plans},
            names=[p.final_name for p in plans],
        )
        conn.commit()
        return [
            replace(r, doc_num=nums.get((r.plan.candidate.pat_num, r.plan.final_name)))
            if isinstance(r, Registered)
            else r
            for r in results
        ]

    def _replay_journal(self, conn: Connection) -> list[Registered]:
        """Finish every batch the journal holds. Runs under the lock, so no batch in flight
        anywhere still owns an entry."""
        replayed: list[Registered] = []
        for entry in self._journal.pending():
            known = queries.file_names(conn, pat_nums={i.pat_num for i in entry.intents})
            plans = [p for p in (_replay_plan(i, known) for i in entry.intents) if p is not None]
            with Folders() as folders:
                self._insert(conn, plans, folders)
            conn.commit()
            self._journal.remove(entry)
            replayed.extend(Registered(p, None) for p in plans)
            log.warning("journal.replayed", entry=entry.path.name, registered=len(plans))
        return [r for r in self._with_doc_nums(conn, list(replayed)) if isinstance(r, Registered)]


def _taken(plan: Plan, rows: Collection[str]) -> Callable[[str], bool]:
    folder = plan.candidate.folder

    def taken(name: str) -> bool:
        return name in rows or os.path.lexists(folder / name)

    return taken


def _replay_plan(intent: Intent, known: Mapping[int, Collection[str]]) -> Plan | None:
    """The row an interrupted intent still needs, or None when it needs none."""
    if intent.dst in known.get(intent.pat_num, ()):
        return None  # the row was committed before the crash
    candidate = Candidate(intent.pat_num, Path(intent.folder), intent.src)
    try:
        with candidate.open_folder() as folder:
            if not folder.lexists(intent.dst):
                # The rename never happened: the file keeps its prefix and a rescan handles
                # it; or the file is gone, and there is nothing to register.
                return None
            if folder.lstat(intent.dst).st_ino != intent.inode:
                return None  # another file took the name; ours was never renamed
            if folder.lexists(intent.src) and folder.lstat(intent.src).st_ino == intent.inode:
                # A crash between link and unlink (no renameat2) leaves both names.
                folder.unlink(intent.src)
    except (FileNotFoundError, LinkRefusedError):
        return None  # the folder is gone, or is a link now: nothing of ours to register
    return Plan(candidate, intent.dst, intent.category, intent.img_type, intent.inode)


def _intent(plan: Plan) -> Intent:
    return Intent(
        pat_num=plan.candidate.pat_num,
        folder=str(plan.candidate.folder),
        src=plan.candidate.name,
        dst=plan.final_name,
        category=plan.category,
        img_type=plan.img_type,
        inode=plan.inode,
    )


def _windowing(plan: Plan, folders: Folders) -> Windowing:
    if plan.img_type != IMG_TYPE_RADIOGRAPH:
        return NO_WINDOWING
    # Read the renamed file: Open Dental's import reads the old (prefixed) path, a known bug.
    try:
        with folders.of(plan.candidate).open_read(plan.final_name) as handle:
            return read_windowing(plan.final_path, opened=handle)
    except Exception as exc:  # noqa: BLE001 - one odd file must never jam the batch or journal
        log.warning("dicom.unreadable", path=str(plan.final_path), error=str(exc))
        return NO_WINDOWING


def document_row(plan: Plan, *, now: datetime, windowing: Windowing) -> dict[str, object]:
    """The ``document`` row Open Dental's folder import writes, every NOT NULL column filled."""
    radiograph = plan.img_type == IMG_TYPE_RADIOGRAPH
    return blank_document(
        PatNum=plan.candidate.pat_num,
        FileName=plan.final_name,
        Description=plan.final_name,
        DocCategory=plan.category,
        ImgType=plan.img_type,
        DateCreated=now,
        DateTStamp=now,
        WindowingMin=windowing.minimum,
        WindowingMax=windowing.maximum,
        PrintHeading=1 if radiograph else 0,
    )


def _log_result(result: Result) -> None:
    if isinstance(result, Registered):
        plan = result.plan
        log.info(
            "document.registered",
            path=str(plan.final_path),
            source=plan.candidate.name,
            patnum=plan.candidate.pat_num,
            docnum=result.doc_num,
            category=plan.category,
        )
    elif result.reason != Gone.KNOWN:
        log.warning(
            "file.skipped",
            path=str(result.candidate.path),
            patnum=result.candidate.pat_num,
            reason=result.reason,
            detail=result.detail or None,
        )
