"""The scanner inbox: every file dropped in an inbox folder routed to its patient and filed once.

``Inbox`` is what the daemon and the commands use: ``process`` one settled file, ``recover``
what a killed process left, ``catch_up`` on every file already waiting, ``assign`` an
unmatched file by hand, list ``unmatched`` and ``duplicates`` files, ``discard`` one of them to
``_Trash/``, ``sweep`` old originals out of ``_Done/`` and old discards out of ``_Trash/``.
It takes plain parts (engine, writer, storage, the ``[inbox]`` section) and reads no Settings.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import Engine

from atoz_watcher.config.sections import InboxFolder, InboxSettings
from atoz_watcher.db.activity import NO_RECORD, Recorder
from atoz_watcher.documents.writer import DocumentWriter
from atoz_watcher.imaging.jobs import OnStored, no_thumbnails
from atoz_watcher.inbox.filer import Filer, OnStep, no_step
from atoz_watcher.inbox.manifest import SUFFIX, Manifest
from atoz_watcher.inbox.outcomes import (
    InboxError,
    OnOutcome,
    Outcome,
    Reason,
    Skipped,
    UnmatchedFile,
    no_outcome,
)
from atoz_watcher.inbox.place import (
    DONE,
    DONE_SUFFIX,
    DUPLICATES,
    REASON_SUFFIX,
    TRASH,
    UNMATCHED,
    WORK,
    InboxPlace,
    names,
    read_json,
    remove,
    write_json,
)
from atoz_watcher.inbox.router import AssignMiss, Router
from atoz_watcher.rules.naming import MAX_NAME_CHARS, skip_reason, x_prefixed
from atoz_watcher.storage import Storage
from atoz_watcher.system.contained import Folder, OutsideRootError

log = structlog.get_logger("atoz_watcher.inbox")


class Inbox:
    """The inbox folders of ``settings`` (or ``folders``), filed through ``writer``."""

    def __init__(
        self,
        engine: Engine,
        writer: DocumentWriter,
        storage: Storage,
        settings: InboxSettings,
        *,
        atoz_root: Path,
        lock_timeout_s: int,
        folders: Sequence[InboxFolder] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now().replace(microsecond=0),
        on_stored: OnStored = no_thumbnails,
        on_outcome: OnOutcome = no_outcome,
        on_step: OnStep = no_step,
        activity: Recorder = NO_RECORD,
    ) -> None:
        router = Router(engine, settings)
        self._router = router
        self._folders = tuple(settings.folders if folders is None else folders)
        self._clock = clock
        self._keep = timedelta(days=settings.keep_days)
        self._filers = [
            Filer(
                InboxPlace.at(folder.path, atoz_root=atoz_root),
                engine=engine,
                writer=writer,
                storage=storage,
                router=router,
                atoz_root=atoz_root,
                keep_days=settings.keep_days,
                lock_timeout_s=lock_timeout_s,
                clock=clock,
                on_stored=on_stored,
                on_outcome=on_outcome,
                on_step=on_step,
                activity=activity,
                label=f"inbox {index}",
            )
            for index, folder in enumerate(self._folders)
        ]

    @property
    def paths(self) -> tuple[Path, ...]:
        """The inbox folders, as configured (what the daemon watches)."""
        return tuple(folder.path for folder in self._folders)

    def owns(self, path: Path) -> bool:
        """Whether ``path`` is a file ``process`` would take: in an inbox, in no ``_`` folder."""
        try:
            _, parts = self._locate(path)
        except InboxError:
            return False
        return not any(part.startswith(("_", ".")) for part in parts[:-1])

    # -- the work --------------------------------------------------------------------------------

    def process(self, path: Path) -> Outcome:
        """Route and file the settled file at ``path`` (a file in an inbox folder)."""
        index, parts = self._locate(path)
        filer = self._filers[index]
        if any(part.startswith(("_", ".")) for part in parts[:-1]):
            return Skipped(str(path), "in an inbox's own folder")
        resumed = self._resume(index, parts)
        if resumed is not None:
            return resumed
        refused = _refusal(filer, parts)
        if refused is not None:
            return Skipped(str(path), refused)
        manifest = filer.claim(parts, default=self._folders[index].category)
        return filer.run(manifest) or Skipped(str(path), "gone")

    def recover(self) -> list[Outcome]:
        """Finish every file a killed process left claimed in an inbox's ``_Work/``."""
        outcomes: list[Outcome] = []
        for filer in self._filers:
            _remove_torn_writes(filer)
            for manifest in self._manifests(filer):
                outcome = filer.run(manifest)
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    def catch_up(self, *, ready: Callable[[Path], bool] | None = None) -> list[Outcome]:
        """``recover``, then ``process`` every file already waiting in the inboxes (those
        ``ready`` accepts, e.g. the daemon's stability check; the others are left for later)."""
        outcomes = self.recover()
        for filer in self._filers:
            try:
                waiting = list(filer.place.files())
            except FileNotFoundError:
                log.warning("inbox.missing", inbox=str(filer.place.path))
                continue
            for parts in waiting:
                path = filer.place.path.joinpath(*parts)
                if ready is None or ready(path):
                    outcomes.append(self.process(path))
        return outcomes

    def assign(self, path: Path, pat_num: int, category: int | str | None = None) -> Outcome:
        """File the unmatched file at ``path`` (in an inbox's ``_Unmatched/``) to ``pat_num``.

        InboxError, the file left where it is, when the patient does not exist or is
        deleted, or the category is unknown.
        """
        index, parts = self._locate(path)
        if len(parts) != 2 or parts[0] != UNMATCHED or parts[1].endswith(REASON_SUFFIX):  # noqa: PLR2004
            raise InboxError(f"{path} is not a file in an inbox's {UNMATCHED}/ folder")
        filer = self._filers[index]
        original = _original(filer, parts[1])
        try:
            target = self._router.assigned(path, name=original, pat_num=pat_num, category=category)
        except AssignMiss as miss:
            raise InboxError(f"cannot file it: {miss.reason.value} {miss.detail}".strip()) from None
        except FileNotFoundError:
            raise InboxError(f"{path} does not exist") from None
        manifest = filer.claim(
            parts, name=original, default=None, assigned={"target": asdict(target)}
        )
        with filer.place.folder(UNMATCHED) as unmatched:
            remove(unmatched, parts[1] + REASON_SUFFIX)
        outcome = filer.run(manifest)
        if outcome is None:
            raise InboxError(f"{path} vanished while it was filed")
        return outcome

    def unmatched(self) -> list[UnmatchedFile]:
        """The files waiting in every inbox's ``_Unmatched/``, oldest first."""
        return self._waiting(UNMATCHED, default_reason="unknown")

    def duplicates(self) -> list[UnmatchedFile]:
        """The files in every inbox's ``_Duplicates/`` (reason "duplicate"; ``detail``: the
        name in ``_Done/`` of the file it repeats), oldest first."""
        return self._waiting(DUPLICATES, default_reason="duplicate")

    def _waiting(self, where: str, *, default_reason: str) -> list[UnmatchedFile]:
        found: list[UnmatchedFile] = []
        for filer in self._filers:
            try:
                with filer.place.folder(where) as folder:
                    for name in names(folder):
                        if name.endswith(REASON_SUFFIX) or name.startswith("."):
                            continue
                        facts = read_json(folder, name + REASON_SUFFIX) or {}
                        reason = str(facts.get("reason") or default_reason)
                        pages = facts.get("pages")
                        found.append(
                            UnmatchedFile(
                                path=filer.place.path / where / name,
                                reason=_reason(reason),
                                detail=str(facts.get("detail") or facts.get("of") or ""),
                                when=_parse(facts.get("when")),
                                original=str(facts.get("original") or name),
                                pages=tuple(pages) if isinstance(pages, list) else None,
                            )
                        )
            except FileNotFoundError:
                continue
        return sorted(found, key=lambda f: (f.when or datetime.min, str(f.path)))

    def discard(self, path: Path) -> Path:
        """Move the file at ``path`` (directly in an inbox's ``_Unmatched/`` or
        ``_Duplicates/``) and its sidecar to ``<inbox>/_Trash/``, where ``sweep`` removes it
        after keep_days; its new path.

        InboxError, nothing moved, for anything else: a path outside those folders, a name
        with a separator, a sidecar, a link or no regular file, a file that is gone.
        """
        index, parts = self._locate(path)
        if len(parts) != 2 or parts[0] not in (UNMATCHED, DUPLICATES):  # noqa: PLR2004
            raise InboxError(
                f"{path} is not a file in an inbox's {UNMATCHED}/ or {DUPLICATES}/ folder"
            )
        where, name = parts
        if "/" in name or "\\" in name or name.startswith(".") or name.endswith(REASON_SUFFIX):
            raise InboxError(f"{name!r} is not a file name that can be discarded")
        filer = self._filers[index]
        with filer.place.folder(where) as source:
            try:
                mode = source.lstat(name).st_mode
            except FileNotFoundError:
                raise InboxError(f"{path} does not exist") from None
            if stat.S_ISLNK(mode):
                raise InboxError(f"{path} is a link: refused")
            if not stat.S_ISREG(mode):
                raise InboxError(f"{path} is not a regular file")
            facts = read_json(source, name + REASON_SUFFIX) or {"original": name}
            facts["discarded_at"] = self._clock().isoformat()
            facts["discarded_from"] = where
            with filer.place.folder(TRASH, create=True) as trash:
                new = _free_pair(trash, name)
                # The sidecar first: a file in _Trash/ always has the time sweep goes by.
                write_json(trash, new + REASON_SUFFIX, facts)
                trash.move_in(source, name, new)
                trash.fsync()
            remove(source, name + REASON_SUFFIX)
        log.info("inbox.discarded", inbox=str(filer.place.path), source=where)
        return filer.place.path / TRASH / new

    def sweep(self, now: datetime) -> int:
        """Remove originals filed more than keep_days before ``now`` from ``_Done/``, and
        files discarded that long ago from ``_Trash/``; how many."""
        removed = self._sweep_trash(now - self._keep)
        cutoff = now - self._keep
        for filer in self._filers:
            try:
                with filer.place.folder(DONE) as done:
                    for name in names(done):
                        if not name.endswith(DONE_SUFFIX):
                            continue
                        facts = read_json(done, name) or {}
                        if (_parse(facts.get("filed_at")) or datetime.min) >= cutoff:
                            continue
                        done.unlink(name.removesuffix(DONE_SUFFIX), missing_ok=True)
                        remove(done, name)
                        removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.info("inbox.swept", removed=removed)
        return removed

    def _sweep_trash(self, cutoff: datetime) -> int:
        removed = 0
        for filer in self._filers:
            try:
                with filer.place.folder(TRASH) as trash:
                    for name in names(trash):
                        if not name.endswith(REASON_SUFFIX):
                            continue
                        facts = read_json(trash, name) or {}
                        if (_parse(facts.get("discarded_at")) or datetime.min) >= cutoff:
                            continue
                        trash.unlink(name.removesuffix(REASON_SUFFIX), missing_ok=True)
                        remove(trash, name)
                        removed += 1
            except FileNotFoundError:
                continue
        return removed

    # -- helpers ---------------------------------------------------------------------------------

    def _locate(self, path: Path) -> tuple[int, tuple[str, ...]]:
        for index, filer in enumerate(self._filers):
            try:
                return index, filer.place.relative(path)
            except OutsideRootError:
                continue
        raise InboxError(f"{path} is not in an inbox folder")

    def _resume(self, index: int, parts: tuple[str, ...]) -> Outcome | None:
        """A manifest a killed process left for this very file: finished, its outcome."""
        filer = self._filers[index]
        for manifest in self._manifests(filer):
            if tuple(manifest.source) == parts and manifest.state == "claiming":
                return filer.run(manifest)
        return None

    @staticmethod
    def _manifests(filer: Filer) -> Iterator[Manifest]:
        try:
            with filer.place.folder(WORK) as work:
                loaded = [
                    (name, read_json(work, name)) for name in names(work) if name.endswith(SUFFIX)
                ]
        except FileNotFoundError:
            return
        for name, raw in loaded:
            manifest = None if raw is None else Manifest.load(raw)
            if manifest is None:
                log.error("inbox.bad_manifest", inbox=str(filer.place.path), manifest=name)
                continue
            yield manifest


def _free_pair(folder: Folder, wanted: str) -> str:
    """``wanted`` or an x-prefixed form of it that is free in ``folder``, its sidecar's name
    too."""
    for candidate in x_prefixed(wanted):
        if not folder.lexists(candidate) and not folder.lexists(candidate + REASON_SUFFIX):
            return candidate
        if len(candidate) > MAX_NAME_CHARS:
            break
    raise InboxError(f"no free name near {wanted} in {folder.relative}")


def _original(filer: Filer, name: str) -> str:
    with filer.place.folder(UNMATCHED) as folder:
        facts = read_json(folder, name + REASON_SUFFIX) or {}
    return str(facts.get("original") or name)


def _remove_torn_writes(filer: Filer) -> None:
    """Remove the hidden temporary files a killed process left in ``_Work/`` (a manifest it
    was rewriting: the manifest itself was only ever replaced whole)."""
    try:
        with filer.place.folder(WORK) as work:
            for name in names(work):
                if name.startswith(".") and name.endswith(".tmp"):
                    work.unlink(name, missing_ok=True)
    except FileNotFoundError:
        return


def _refusal(filer: Filer, parts: tuple[str, ...]) -> str | None:
    """Why the file at ``parts`` is not taken (gone, a link or no regular file, a name Open
    Dental skips), or None."""
    try:
        with filer.place.folder(*parts[:-1]) as folder:
            mode = folder.lstat(parts[-1]).st_mode
    except FileNotFoundError:
        return "gone"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    skip = skip_reason(parts[-1])
    return None if skip is None else f"a name Open Dental skips ({skip})"


def _reason(value: str) -> Reason | str:
    try:
        return Reason(value)
    except ValueError:
        return value


def _parse(value: object) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
