"""What a thumbnail job is, Open Dental's freshness rule, and carrying one job out."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from atoz_watcher.db.queries import DocumentFile
from atoz_watcher.errors import ThumbnailError
from atoz_watcher.layout import THUMBNAILS_DIR, folder_name, patient_dir
from atoz_watcher.registrar import Registered
from atoz_watcher.thumbs import NO_ADJUST, Adjust, Renderer, thumbnailable

log = structlog.get_logger("atoz_watcher.thumbnails")

Stat = Callable[[Path], os.stat_result]


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


def is_fresh(thumbnail_mtime: datetime | None, stamp: datetime) -> bool:
    """Open Dental's rule: a thumbnail is fresh while its file is newer than the document's
    DateTStamp; a missing one never is. Both are the server's local time (naive)."""
    return thumbnail_mtime is not None and thumbnail_mtime > stamp


def thumbnail_of(source: Path) -> Path:
    """``<patient folder>/Thumbnails/<FileName>``."""
    return source.parent / THUMBNAILS_DIR / source.name


def job_for_registered(result: Registered, *, stamp: datetime) -> ThumbJob | None:
    """The job for a file the registrar just registered; None when it is not an image."""
    source = result.plan.final_path
    if not thumbnailable(source.name):
        return None
    return ThumbJob(
        source=source,
        dest=thumbnail_of(source),
        stamp=stamp,
        pat_num=result.plan.candidate.pat_num,
        doc_num=result.doc_num,
    )


def _plain(name: str) -> bool:
    """A single path component: a name from the database never leads outside its folder."""
    return name not in {"", ".", ".."} and not any(c in name for c in "/\\\0")


def job_for_document(root: Path, document: DocumentFile) -> ThumbJob | str | None:
    """The job for a registered document; a reason (str) when its names are unsafe; None
    when it is not an image."""
    if not thumbnailable(document.file_name):
        return None
    folder = document.image_folder or folder_name(document.lname, document.fname, document.pat_num)
    if not (_plain(document.file_name) and _plain(folder)):
        return f"unsafe FileName or ImageFolder: {document.file_name!r} in {folder!r}"
    source = patient_dir(root, folder) / document.file_name
    return ThumbJob(
        source=source,
        dest=thumbnail_of(source),
        stamp=document.stamp or datetime.min,
        pat_num=document.pat_num,
        doc_num=document.doc_num,
        adjust=adjust_of(document),
    )


def adjust_of(document: DocumentFile) -> Adjust:
    """Open Dental's image settings of a document row, as the renderer takes them."""
    return Adjust(
        crop=document.crop, flip=document.flip, degrees=document.degrees, window=document.window
    )


def _mtime(path: Path, stat: Stat) -> datetime | None:
    try:
        return datetime.fromtimestamp(stat(path).st_mtime)
    except OSError:  # missing, or Thumbnails/ unreadable: build it (writing says what is wrong)
        return None


def carry_out(
    job: ThumbJob, renderer: Renderer, *, force: bool = False, stat: Stat = os.stat
) -> Outcome:
    """Build the job's thumbnail unless it is fresh; log what went wrong, never raise for a bad
    file (the document row stays; the next file goes on)."""
    if not force and is_fresh(_mtime(job.dest, stat), job.stamp):
        return Outcome.FRESH
    fields = {"path": str(job.source), "patnum": job.pat_num, "docnum": job.doc_num}
    try:
        renderer.write(job.source, job.dest, adjust=job.adjust)
    except ThumbnailError as exc:
        if not job.source.exists():
            log.info("thumbnail.missing", **fields)
            return Outcome.MISSING
        log.warning("thumbnail.failed", reason=exc.reason, **fields)
        return Outcome.FAILED
    except FileNotFoundError:
        log.info("thumbnail.missing", **fields)
        return Outcome.MISSING
    except OSError as exc:
        # Writing failed: a full disk, a read-only share, Thumbnails/ not ours to write.
        log.warning("thumbnail.failed", reason=f"cannot write {job.dest}: {exc.strerror}", **fields)
        return Outcome.FAILED
    log.debug("thumbnail.made", thumbnail=str(job.dest), **fields)
    return Outcome.MADE
