"""Filing a claimed file exactly once: its parts become documents, the original is put away.

The steps, each recorded in the manifest (``inbox.manifest``) before the next one starts:

1. **Claim**: the manifest is written, then the file is renamed into ``_Work/`` (never
   replacing). Killed between the two, the file is still where it arrived.
2. **Route** (``inbox.router``); a file with the content of one filed within keep_days goes
   to ``_Duplicates/``; a file nothing routes goes to ``_Unmatched/`` with a sidecar
   ``<name>.reason.json``.
3. **Split** a cover-sheet batch into one file per part in ``_Work/`` (hashed).
4. **File** each part: the manifest records the patient's highest DocNum first (the floor),
   then ``DocumentWriter.create`` makes the row and the file under the registration lock,
   then the manifest records the DocNum. A part found in ``filing`` (the process died inside
   ``create``) is checked first, under the registration lock: a row of that patient above the
   floor whose stored content has the part's SHA-256 is that part's row (adopted); a row the
   writer left without its file (MyISAM keeps an insert a crash interrupted) is deleted; a file
   of that content in the patient's folder that no row names is removed. Only then is the
   part filed again.
5. **Finish**: a sidecar ``_Done/<name>.done.json`` (the SHA-256, when, the DocNums) is
   written, the original moved next to it, the manifest removed.

A kill -9 anywhere leaves each page either still in the inbox (or ``_Work/``, with a manifest
that ``Inbox.recover`` finishes) or filed once.
"""

from __future__ import annotations

import errno
import stat
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from atoz_watcher.db import documents as document_table
from atoz_watcher.db import queries
from atoz_watcher.db.activity import NO_RECORD, Arrival, Problem, Recorder, Way
from atoz_watcher.db.lock import locked_connection
from atoz_watcher.documents.checks import (
    CategoryError,
    PatientDeletedError,
    PatientNotFoundError,
    patient_and_category,
)
from atoz_watcher.documents.writer import DocumentWriter, NewDocument
from atoz_watcher.errors import AtozError
from atoz_watcher.imaging.jobs import OnStored
from atoz_watcher.imaging.pages import UnreadableScanError
from atoz_watcher.imaging.split import PartFile, split_scan
from atoz_watcher.inbox.manifest import Manifest, PartRecord
from atoz_watcher.inbox.outcomes import (
    Duplicate,
    OnOutcome,
    Outcome,
    OutcomeKind,
    Reason,
    Routed,
    Rule,
    Unmatched,
)
from atoz_watcher.inbox.place import (
    DONE,
    DONE_SUFFIX,
    DUPLICATES,
    REASON_SUFFIX,
    UNMATCHED,
    WORK,
    InboxPlace,
    free_name,
    hash_file,
    names,
    read_json,
    remove,
    write_json,
)
from atoz_watcher.inbox.router import Decision, PartPlan, Router, Target
from atoz_watcher.rules.inbox_reasons import reason_words
from atoz_watcher.rules.layout import folder_name, letter_folder
from atoz_watcher.rules.naming import MAX_NAME_CHARS, parse_prefix, skip_reason
from atoz_watcher.storage import Storage
from atoz_watcher.system.contained import Folder, Tree

log = structlog.get_logger("atoz_watcher.inbox")

# Called after each durable step with its name; a test makes it raise to stand for a kill.
OnStep = Callable[[str], None]


def no_step(step: str) -> None:
    del step


class Filer:
    """Runs manifests of one inbox to their end."""

    def __init__(
        self,
        place: InboxPlace,
        *,
        engine: Engine,
        writer: DocumentWriter,
        storage: Storage,
        router: Router,
        atoz_root: Path,
        keep_days: float,
        lock_timeout_s: int,
        clock: Callable[[], datetime],
        on_stored: OnStored,
        on_outcome: OnOutcome,
        on_step: OnStep = no_step,
        activity: Recorder = NO_RECORD,
        label: str = "inbox",
    ) -> None:
        self.place = place
        self._activity = activity
        self._label = label  # "inbox <n>": how the activity log names this inbox
        self._engine = engine
        self._writer = writer
        self._storage = storage
        self._router = router
        self._root = atoz_root
        self._keep = timedelta(days=keep_days)
        self._lock_timeout_s = lock_timeout_s
        self._clock = clock
        self._on_stored = on_stored
        self._on_outcome = on_outcome
        self._step = on_step

    # -- claiming --------------------------------------------------------------------------------

    def claim(
        self,
        source: tuple[str, ...],
        *,
        default: int | str | None,
        name: str | None = None,
        assigned: dict[str, Any] | None = None,
    ) -> Manifest:
        """Write the manifest, then move the file at ``source`` into ``_Work/``. ``name``:
        the name it arrived under, when not its own (an unmatched part being assigned)."""
        manifest = Manifest.new(
            source, extension=_suffix(source[-1]), default=default, assigned=assigned
        )
        if name is not None:
            manifest.name = name
        with self.place.folder(WORK, create=True) as work:
            manifest.save(work)
            self._step("claim.manifest")
            self._move_in(manifest)
        self._step("claim.moved")
        return manifest

    def _move_in(self, manifest: Manifest) -> bool:
        """Move the claimed file from where it arrived into _Work/; False when it is not
        there (moved already, or gone)."""
        with self.place.folder(*manifest.source[:-1]) as origin, self.place.folder(WORK) as work:
            try:
                work.move_in(origin, manifest.source[-1], manifest.work)
            except FileNotFoundError:
                return False
            work.fsync()
            origin.fsync()
        return True

    # -- running ---------------------------------------------------------------------------------

    def run(self, manifest: Manifest) -> Outcome | None:
        """Take ``manifest`` from its state to the end; its outcome (None: its file is gone)."""
        with self.place.folder(WORK) as work:
            if manifest.state == "claiming":
                moved = self._move_in(manifest)
                if not moved and not work.lexists(manifest.work):
                    remove(work, manifest.file_name)  # nothing was claimed
                    return None
                manifest.state = "claimed"
                manifest.save(work)
            if manifest.state == "claimed":
                early = self._route(work, manifest)
                if early is not None:
                    return early
            if manifest.state == "routed":
                try:
                    self._split(work, manifest)
                except (UnreadableScanError, ValueError) as exc:
                    # Its codes were read, its pages cannot be copied: nothing was filed yet.
                    return self._unreadable(work, manifest, str(exc))
            if manifest.state == "split":
                for part in manifest.parts:
                    self._file_part(work, manifest, part)
                manifest.state = "finishing"
                manifest.save(work)
                self._step("finishing")
            return self._finish(work, manifest)

    def _unreadable(self, work: Folder, manifest: Manifest, detail: str) -> Outcome:
        for part in manifest.parts:
            if part.file is not None:
                work.unlink(part.file, missing_ok=True)
        name = self._park(
            work,
            manifest,
            where=UNMATCHED,
            file=manifest.work,
            wanted=manifest.name,
            facts={"reason": Reason.UNREADABLE_SCAN.value, "detail": detail},
        )
        remove(work, manifest.file_name)
        self._report_unmatched(manifest, Reason.UNREADABLE_SCAN, detail, name)
        return Unmatched(
            source="/".join(manifest.source),
            reason=Reason.UNREADABLE_SCAN,
            name=name,
            detail=detail,
        )

    def _route(self, work: Folder, manifest: Manifest) -> Outcome | None:
        """Hash and route the claimed file; an outcome when it ends here (duplicate,
        unmatched as a whole)."""
        if not work.lexists(manifest.work):
            remove(work, manifest.file_name)
            return None
        with work.open_read(manifest.work) as handle:
            manifest.sha256, manifest.size = hash_file(handle)
        path = self.place.path / WORK / manifest.work
        if manifest.assigned is None:
            duplicate_of = self.filed_before(manifest.sha256)
            if duplicate_of is not None:
                name = self._park(
                    work,
                    manifest,
                    where=DUPLICATES,
                    file=manifest.work,
                    wanted=manifest.name,
                    facts={"reason": "duplicate", "of": duplicate_of},
                )
                remove(work, manifest.file_name)
                self._report_duplicate(manifest, name)
                return Duplicate(source="/".join(manifest.source), name=name)
            decision = self._decide(path, manifest)
        else:
            decision = Decision(
                Rule.ASSIGNED,
                (_assigned_part(manifest.assigned),),
            )
        whole = decision.unmatched
        if whole is not None:
            reason = whole.reason or Reason.NO_ROUTE
            name = self._park(
                work,
                manifest,
                where=UNMATCHED,
                file=manifest.work,
                wanted=manifest.name,
                facts={"reason": reason.value, "detail": whole.detail},
            )
            remove(work, manifest.file_name)
            self._report_unmatched(manifest, reason, whole.detail, name)
            return Unmatched(
                source="/".join(manifest.source), reason=reason, name=name, detail=whole.detail
            )
        manifest.rule = decision.rule.value if decision.rule else None
        manifest.empty_covers = list(decision.empty_covers)
        manifest.parts = [
            PartRecord(
                pages=None if p.pages is None else list(p.pages),
                target=None if p.target is None else asdict(p.target),
                reason=None if p.reason is None else p.reason.value,
                detail=p.detail,
            )
            for p in decision.parts
        ]
        manifest.state = "routed"
        manifest.save(work)
        self._step("routed")
        return None

    def _decide(self, path: Path, manifest: Manifest) -> Decision:
        """The router's decision; a file it cannot read at all (a decoder's own error) is
        unmatched, never retried for ever. Database errors are the caller's to retry."""
        try:
            return self._router.route(path, name=manifest.name, default=manifest.default)
        except (AtozError, DBAPIError):
            raise
        except Exception as exc:  # noqa: BLE001 - one odd file must not jam the inbox
            return Decision(
                None,
                (PartPlan(None, reason=Reason.UNREADABLE_SCAN, detail=type(exc).__name__),),
            )

    def _split(self, work: Folder, manifest: Manifest) -> None:
        """Write each part of a split batch to its own file in _Work/, and hash each."""
        splits: list[PartFile] = []
        for index, part in enumerate(manifest.parts):
            if part.pages is None:
                part.sha256, part.size = manifest.sha256, manifest.size
                continue
            part.file = f"{manifest.id}.{index + 1}{_suffix(manifest.work)}"
            work.unlink(part.file, missing_ok=True)  # a split a kill interrupted
            splits.append(PartFile(tuple(part.pages), self.place.path / WORK / part.file))
        if splits:
            split_scan(self.place.path / WORK / manifest.work, splits)
            work.fsync()
            self._step("split.written")
            for part in manifest.parts:
                if part.file is not None:
                    with work.open_read(part.file) as handle:
                        part.sha256, part.size = hash_file(handle)
        manifest.state = "split"
        manifest.save(work)
        self._step("split")

    # -- one part --------------------------------------------------------------------------------

    def _file_part(self, work: Folder, manifest: Manifest, part: PartRecord) -> None:
        if part.state in {"filed", "unmatched"}:
            return
        file = part.file or manifest.work
        if part.target is not None and part.state == "planned":
            self._recheck(work, manifest, part)
        if part.target is None:
            pages = None if part.pages is None else [p + 1 for p in part.pages]
            name = wanted = _part_name(manifest.name, part.pages)
            if work.lexists(file):  # else parked already, by a process killed just after
                name = self._park(
                    work,
                    manifest,
                    where=UNMATCHED,
                    file=file,
                    wanted=wanted,
                    facts={"reason": part.reason, "detail": part.detail, "pages": pages},
                )
            part.state = "unmatched"
            manifest.save(work)
            self._report_unmatched(
                manifest, Reason(part.reason or Reason.NO_ROUTE.value), part.detail, name
            )
            self._step("part.unmatched")
            return
        target = Target(**part.target)
        if part.state == "filing":
            doc_num = self._recover_part(manifest, part, target)
            if doc_num is not None:
                self._filed(work, manifest, part, doc_num)
                return
        with self._engine.connect() as conn:
            part.floor = queries.max_doc_num(conn, pat_num=target.pat_num)
        part.state = "filing"
        manifest.save(work)
        self._step("part.filing")
        spool = self._storage.new_spool()
        try:
            with work.open_read(file) as handle:
                while chunk := handle.read(1024 * 1024):
                    spool.write(chunk)
            spool.finish()
            created = self._writer.create(
                NewDocument(
                    pat_num=target.pat_num,
                    extension=target.extension,
                    category=target.category,
                    img_type=target.img_type,
                    description=_description(manifest.name),
                    print_heading=target.print_heading,
                    windowing=(target.windowing[0], target.windowing[1]),
                ),
                spool,
                now=self._clock(),
            )
        finally:
            spool.discard()
        self._step("part.created")
        self._filed(work, manifest, part, created.doc_num)
        job = created.thumbnail_job(stamp=self._clock())
        if job is not None:
            self._on_stored(job)

    def _recheck(self, work: Folder, manifest: Manifest, part: PartRecord) -> None:
        """Unmatch a planned part whose patient was deleted (or category removed) since it
        was routed: such a part would fail in the writer on every try."""
        target = Target(**part.target or {})
        with self._engine.connect() as conn:
            try:
                patient_and_category(conn, pat_num=target.pat_num, category=target.category)
            except PatientNotFoundError:
                part.reason = Reason.UNKNOWN_PATIENT.value
            except PatientDeletedError:
                part.reason = Reason.DELETED_PATIENT.value
            except CategoryError:
                part.reason = Reason.UNKNOWN_CATEGORY.value
            else:
                return
        part.target = None
        part.detail = "since it was routed"
        manifest.save(work)

    def _filed(self, work: Folder, manifest: Manifest, part: PartRecord, doc_num: int) -> None:
        part.state = "filed"
        part.doc_num = doc_num
        manifest.save(work)
        self._step("part.filed")
        if part.file is not None:
            remove(work, part.file)

    def _recover_part(self, manifest: Manifest, part: PartRecord, target: Target) -> int | None:
        """After a kill inside ``create``: the DocNum of the part's row when it was made;
        otherwise leave nothing of the interrupted attempt (a row without its file, a file
        without its row) and return None."""
        description = _description(manifest.name)
        with locked_connection(self._engine, timeout_s=self._lock_timeout_s) as conn:
            patient = queries.patient(conn, pat_num=target.pat_num)
            if patient is None:
                conn.rollback()
                return None
            folder = patient.image_folder or folder_name(
                patient.lname, patient.fname, patient.pat_num
            )
            rows = queries.documents_after(conn, pat_num=target.pat_num, after_doc_num=part.floor)
            for row in rows:
                if not row.file_name:
                    if row.blank_note and row.description == description:
                        document_table.delete(conn, doc_num=row.doc_num)
                        log.warning("inbox.recovered_row", docnum=row.doc_num, action="deleted")
                    continue
                if self._stored_hash(conn, folder, row.file_name, row.doc_num) == part.sha256:
                    conn.commit()
                    log.info("inbox.recovered_row", docnum=row.doc_num, action="adopted")
                    return row.doc_num
            conn.commit()
            if self._storage.kind == "LocalAtoZ":
                known = queries.file_names(conn, pat_nums=[target.pat_num])[target.pat_num]
                self._remove_orphans(folder, known, part)
                conn.rollback()
        return None

    def _stored_hash(self, conn: Any, folder: str, file_name: str, doc_num: int) -> str | None:  # noqa: ANN401 - a Connection
        import hashlib  # noqa: PLC0415 - only recovery hashes stored files

        raw = queries.raw_base64(conn, doc_num=doc_num) if self._storage.kind != "LocalAtoZ" else ""
        try:
            data = self._storage.read(folder=folder, file_name=file_name, raw_base64=raw)
        except (OSError, ValueError):
            return None
        return hashlib.sha256(data).hexdigest()

    def _remove_orphans(self, folder: str, known: set[str], part: PartRecord) -> None:
        """Remove files of the part's content in the patient folder that no row names (the
        writer stored them, then was killed before its row was committed)."""
        tree = Tree(self._root)
        try:
            with tree.folder((letter_folder(folder), folder)) as directory:
                for name in names(directory):
                    if name in known or skip_reason(name) is not None:
                        continue
                    try:
                        info = directory.lstat(name)
                    except OSError:
                        continue
                    if not stat.S_ISREG(info.st_mode) or info.st_size != part.size:
                        continue
                    with directory.open_read(name) as handle:
                        digest, _ = hash_file(handle)
                    if digest == part.sha256:
                        directory.unlink(name)
                        directory.fsync()
                        log.warning("inbox.recovered_file", action="removed")
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno not in {errno.ENOENT, errno.ENOTDIR}:
                raise

    # -- the end ---------------------------------------------------------------------------------

    def _finish(self, work: Folder, manifest: Manifest) -> Outcome:
        doc_nums = tuple(p.doc_num for p in manifest.parts if p.doc_num is not None)
        unmatched = tuple(
            Reason(p.reason or Reason.NO_ROUTE.value)
            for p in manifest.parts
            if p.state == "unmatched"
        )
        if work.lexists(manifest.work):
            self._park(
                work,
                manifest,
                where=DONE,
                file=manifest.work,
                wanted=manifest.name,
                facts={
                    "sha256": manifest.sha256,
                    "filed_at": self._clock().isoformat(),
                    "doc_nums": list(doc_nums),
                    "rule": manifest.rule,
                },
                suffix=DONE_SUFFIX,
            )
            self._step("done.moved")
        for part in manifest.parts:
            if part.file is not None:
                work.unlink(part.file, missing_ok=True)  # filed; a kill kept it
        remove(work, manifest.file_name)
        rule = Rule(manifest.rule or Rule.ASSIGNED)
        outcome = Routed(
            source="/".join(manifest.source), rule=rule, doc_nums=doc_nums, unmatched=unmatched
        )
        split = outcome.parts > 1 or (manifest.parts and manifest.parts[0].pages is not None)
        event = "inbox.split" if split else "inbox.routed"
        log.info(
            event,
            inbox=str(self.place.path),
            scan=manifest.sha256[:12],
            rule=rule.value,
            parts=outcome.parts,
            patnums=[p.target["pat_num"] for p in manifest.parts if p.target],
            docnums=list(doc_nums),
            empty_covers=len(manifest.empty_covers),
        )
        kind = OutcomeKind.SPLIT if split else OutcomeKind.ROUTED
        self._on_outcome(kind, rule.value)
        self._activity.arrived([Arrival(n, Way.INBOX, rule.value) for n in doc_nums])
        return outcome

    def _park(
        self,
        work: Folder,
        manifest: Manifest,
        *,
        where: str,
        file: str,
        wanted: str,
        facts: dict[str, Any],
        suffix: str = REASON_SUFFIX,
    ) -> str:
        """Move ``file`` from _Work/ to ``where`` under a free name near ``wanted``, with a
        sidecar ``<name><suffix>`` written first; the name."""
        sidecar = {
            "original": manifest.name,
            "source": "/".join(manifest.source),
            "sha256": manifest.sha256,
            "when": self._clock().isoformat(),
            **facts,
        }
        with self.place.folder(where, create=True) as folder:
            while True:
                name = free_name(folder, wanted)
                write_json(folder, name + suffix, sidecar)
                self._step(f"{where}.sidecar")
                try:
                    folder.move_in(work, file, name)
                except FileExistsError:
                    continue  # someone took the name meanwhile
                folder.fsync()
                work.fsync()
                return name

    def filed_before(self, sha256: str) -> str | None:
        """The name in _Done/ of a file of this content filed within keep_days, if any."""
        cutoff = self._clock() - self._keep
        try:
            with self.place.folder(DONE) as done:
                for name in names(done):
                    if not name.endswith(DONE_SUFFIX):
                        continue
                    facts = read_json(done, name)
                    if facts is None or facts.get("sha256") != sha256:
                        continue
                    if _when(facts.get("filed_at")) >= cutoff:
                        return name.removesuffix(DONE_SUFFIX)
        except FileNotFoundError:
            return None
        return None

    def _report_unmatched(self, manifest: Manifest, reason: Reason, detail: str, name: str) -> None:
        log.warning(
            "inbox.unmatched",
            inbox=str(self.place.path),
            scan=manifest.sha256[:12],
            reason=reason.value,
            detail=detail or None,
        )
        self._on_outcome(OutcomeKind.UNMATCHED, reason.value)
        words = unmatched_words(reason, detail)
        place = f"{self._label}/{name}"
        self._activity.problem(Problem("unmatched", words, place))

    def _report_duplicate(self, manifest: Manifest, name: str) -> None:
        del name
        log.info("inbox.duplicate", inbox=str(self.place.path), scan=manifest.sha256[:12])
        self._on_outcome(OutcomeKind.DUPLICATE, "")


def unmatched_words(reason: Reason, detail: str) -> str:
    """Why a file was left unmatched, in an operator's words, as the activity log records it."""
    words = reason_words(reason.value)
    return f"{words} ({detail})" if detail else words


def _when(value: object) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.min


def _suffix(name: str) -> str:
    """The name's extension as kept on the claimed file (``.pdf``), or none."""
    stem, dot, extension = name.rpartition(".")
    if dot and stem and extension.isascii() and extension.isalnum() and len(extension) <= 10:  # noqa: PLR2004
        return f".{extension}"
    return ""


def _description(name: str) -> str:
    """document.Description: the name the file arrived under, its ``_##_`` prefix cut."""
    prefix = parse_prefix(name)
    rest = prefix.rest if prefix is not None and prefix.rest else name
    return rest[:MAX_NAME_CHARS]


def _part_name(name: str, pages: list[int] | None) -> str:
    """``scan (pages 3-5).pdf``: an unmatched part of a split batch, named after its pages."""
    if pages is None:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, extension = name, ""
    first, last = pages[0] + 1, pages[-1] + 1
    label = f"page {first}" if first == last else f"pages {first}-{last}"
    return f"{stem} ({label}){'.' + extension if extension else ''}"


def _assigned_part(assigned: dict[str, Any]) -> PartPlan:
    return PartPlan(None, target=Target(**assigned["target"]))
