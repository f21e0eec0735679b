"""What a thumbnail job is, Open Dental's freshness rule, and carrying one job out."""

from __future__ import annotations

import enum
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

import structlog

from atoz_watcher.db.queries import DocumentFile
from atoz_watcher.errors import ThumbnailError
from atoz_watcher.imaging.render import NO_ADJUST, Adjust, Renderer, thumbnailable
from atoz_watcher.rules.layout import THUMBNAILS_DIR, folder_name, patient_dir
from atoz_watcher.rules.naming import plain
from atoz_watcher.system.contained import LinkRefusedError, OutsideRootError, Tree

log = structlog.get_logger("atoz_watcher.thumbnails")


class Outcome(enum.StrEnum):
    MADE = "made"
    FRESH = "fresh"  # the thumbnail on disk is newer than the document: left alone
    FAILED = "failed"  # damaged, unknown format, too large, or it could not be written
    MISSING = "missing"  # the document's file is not in the patient folder


@dataclass(frozen=True, slots=True)
class ThumbJob:
    source: Path
    dest: Path
    # document.DateTStamp; a thumbnail whose file is older is rebuilt.
    stamp: datetime
    pat_num: int
    doc_num: int | None
    adjust: Adjust = NO_ADJUST
    # Where the walk to source and dest starts, following no link below it: the A-to-Z root,
    # which for a file in the tree (``<root>/<Letter>/<Folder>/<FileName>``) is three folders
    # up from it, the default; a private scratch folder for a thumbnail made outside the tree.
    root: Path | None = None
    # Built even when the thumbnail on disk looks fresh: the file was stored just now under a
    # name we chose, so whatever thumbnail has that name is an older file's.
    force: bool = False

    @property
    def tree(self) -> Tree:
        return Tree(self.root if self.root is not None else self.source.parents[2])


# Where a stored file's thumbnail job goes: the thumbnail queue's ``submit`` (None: the outcome
# is counted where the job runs), a one-shot command's ``RenderNow`` (the outcome, at once), or
# ``no_thumbnails`` when thumbnails are off.
OnStored: TypeAlias = Callable[[ThumbJob], Outcome | None]


def no_thumbnails(job: ThumbJob) -> None:
    """Thumbnails are off (or storage is InDatabase): the job is dropped."""
    del job


def is_fresh(thumbnail_mtime: datetime | None, stamp: datetime) -> bool:
    """Open Dental's rule: a thumbnail is fresh while its file is newer than the document's
    DateTStamp; a missing one never is. Both are the server's local time (naive)."""
    return thumbnail_mtime is not None and thumbnail_mtime > stamp


def thumbnail_of(source: Path) -> Path:
    """``<patient folder>/Thumbnails/<FileName>``."""
    return source.parent / THUMBNAILS_DIR / source.name


def job_for(
    source: Path,
    *,
    stamp: datetime,
    pat_num: int,
    doc_num: int | None,
    adjust: Adjust = NO_ADJUST,
    root: Path | None = None,
    force: bool = False,
) -> ThumbJob | None:
    """The one way to make a job: the thumbnail of the stored file ``source``, in
    ``Thumbnails/`` beside it; None when it is not an image. Each caller fills it from its own
    result (a registered file, a document row, an upload, a materialised placeholder)."""
    if not thumbnailable(source.name):
        return None
    return ThumbJob(
        source=source,
        dest=thumbnail_of(source),
        stamp=stamp,
        pat_num=pat_num,
        doc_num=doc_num,
        adjust=adjust,
        root=root,
        force=force,
    )


def job_for_document(root: Path, document: DocumentFile) -> ThumbJob | str | None:
    """The job for a registered document; a reason (str) when its names are unsafe; None
    when it is not an image."""
    if not thumbnailable(document.file_name):
        return None
    folder = document.image_folder or folder_name(document.lname, document.fname, document.pat_num)
    if not (plain(document.file_name) and plain(folder)):
        return f"unsafe FileName or ImageFolder: {document.file_name!r} in {folder!r}"
    return job_for(
        patient_dir(root, folder) / document.file_name,
        stamp=document.stamp or datetime.min,
        pat_num=document.pat_num,
        doc_num=document.doc_num,
        adjust=adjust_of(document),
        root=root,
    )


def adjust_of(document: DocumentFile) -> Adjust:
    """Open Dental's image settings of a document row, as the renderer takes them."""
    return Adjust(
        crop=document.crop, flip=document.flip, degrees=document.degrees, window=document.window
    )


def _mtime(tree: Tree, path: Path) -> datetime | None:
    """The thumbnail's time; None when there is none to trust: missing, unreadable (building it
    says what is wrong), or a link, which is never taken for a thumbnail (it is replaced)."""
    try:
        info = tree.lstat(path)
    except (OSError, OutsideRootError):
        return None
    if stat.S_ISLNK(info.st_mode):
        log.warning("path.link_refused", path=str(path.relative_to(tree.root)))
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return datetime.fromtimestamp(info.st_mtime)


def read_thumbnail(job: ThumbJob) -> bytes | None:
    """The job's thumbnail as written; None when it cannot be read (or is a link)."""
    try:
        return job.tree.read_bytes(job.dest)
    except (OSError, OutsideRootError):
        return None


def _source_exists(job: ThumbJob) -> bool:
    try:
        job.tree.lstat(job.source)
    except (OSError, OutsideRootError):
        return False
    return True


def carry_out(job: ThumbJob, renderer: Renderer, *, force: bool = False) -> Outcome:
    """Build the job's thumbnail unless it is fresh (and not forced); log what went wrong,
    never raise for a bad file (the document row stays; the next file goes on). The image is
    read, and the thumbnail and its ``Thumbnails/`` folder written, without following a link
    (``contained``)."""
    if not (force or job.force) and is_fresh(_mtime(job.tree, job.dest), job.stamp):
        return Outcome.FRESH
    outcome = _build(job, renderer)
    if outcome is Outcome.MADE:
        log.debug(
            "thumbnail.made",
            thumbnail=str(job.dest),
            path=str(job.source),
            patnum=job.pat_num,
            docnum=job.doc_num,
        )
    return outcome


def _build(job: ThumbJob, renderer: Renderer) -> Outcome:  # noqa: PLR0911 - one per outcome
    tree = job.tree
    fields = {"path": str(job.source), "patnum": job.pat_num, "docnum": job.doc_num}
    try:
        with tree.open_read(job.source) as handle:
            _, data = renderer.encode(handle, name=job.source.name, adjust=job.adjust)
        tree.replace_file(job.dest, data)
    except ThumbnailError as exc:
        if not _source_exists(job):
            log.info("thumbnail.missing", **fields)
            return Outcome.MISSING
        log.warning("thumbnail.failed", reason=exc.reason, **fields)
        return Outcome.FAILED
    except FileNotFoundError:
        log.info("thumbnail.missing", **fields)
        return Outcome.MISSING
    except LinkRefusedError as exc:
        log.warning("thumbnail.failed", reason=f"a link, refused: {exc.relative}", **fields)
        return Outcome.FAILED
    except OutsideRootError as exc:
        log.warning("thumbnail.failed", reason=str(exc), **fields)
        return Outcome.FAILED
    except OSError as exc:
        # Writing failed: a full disk, a read-only share, Thumbnails/ not ours to write.
        log.warning("thumbnail.failed", reason=f"cannot write {job.dest}: {exc.strerror}", **fields)
        return Outcome.FAILED
    return Outcome.MADE
