"""Pictures for the page: a document's thumbnail and the first page of an inbox file.

A document's thumbnail is Open Dental's own ``Thumbnails/`` file while it is fresh (and a
browser can show its format); otherwise it is rendered now, in memory, as a JPEG: a page that
only looks writes nothing into the patient's folder (the daemon's queue makes the file). An
inbox file is named in URLs as ``<folder index>/<name>`` and resolved only to a regular file
directly inside that inbox's ``_Unmatched/`` or ``_Duplicates/``. Every read walks from the
A-to-Z root or the inbox folder without following a link (``system.contained``).
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from sqlalchemy import Engine

from atoz_watcher.db import queries
from atoz_watcher.errors import ThumbnailError
from atoz_watcher.imaging.jobs import ThumbJob, adjust_of, is_fresh, job_for_document
from atoz_watcher.imaging.render import Renderer, output_format
from atoz_watcher.inbox.place import DUPLICATES, REASON_SUFFIX, UNMATCHED
from atoz_watcher.rules.naming import plain
from atoz_watcher.storage import Storage
from atoz_watcher.system.contained import LinkRefusedError, OutsideRootError, Tree
from atoz_watcher.ui.parts import UiParts

THUMBNAIL_BOX: Final = (100, 100)
# The inbox list's preview, and the large one beside the assign form.
SMALL_PREVIEW: Final = (120, 160)
LARGE_PREVIEW: Final = (600, 800)

# Thumbnails/ formats a browser shows; a TIFF or TGA thumbnail is rendered again as a JPEG.
_SHOWN: Final = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}
# Why a path is refused, as an OSError or a refusal of the walk.
_REFUSED: Final = (OSError, OutsideRootError, ValueError)

# What stands in for a file with no picture (a Word file, a damaged image): a grey page.
PLACEHOLDER_SVG: Final = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100" viewBox="0 0 100 100">'
    b'<rect x="22" y="10" width="56" height="80" fill="#f4f4f4" stroke="#888" stroke-width="2"/>'
    b'<path d="M32 32h36M32 44h36M32 56h36M32 68h24" stroke="#aaa" stroke-width="3"/></svg>'
)


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes
    media_type: str


PLACEHOLDER: Final = Picture(PLACEHOLDER_SVG, "image/svg+xml")


class BadInboxFileError(ValueError):
    """A ``file`` value that names no file waiting in an inbox (the page's 400, with why)."""


class Previews:
    """Thumbnails of documents and previews of inbox files, for one database and tree."""

    def __init__(
        self,
        *,
        reader: Engine,
        storage: Storage,
        root: Path,
        in_database: bool,
        renderer: Renderer,
    ) -> None:
        self._reader = reader
        self._storage = storage
        self._root = root
        self._in_database = in_database
        self._renderer = renderer

    @classmethod
    def of(cls, parts: UiParts) -> Previews:
        """The previews of the page's database and tree."""
        return cls(
            reader=parts.reader,
            storage=parts.storage,
            root=parts.root,
            in_database=parts.in_database,
            renderer=parts.renderer,
        )

    def thumbnail(self, doc_num: int) -> Picture | None:
        """Document ``doc_num``'s thumbnail; the placeholder when it has none to show; None
        when there is no such document."""
        with self._reader.connect() as conn:
            found = queries.document_files(conn, after_doc_num=doc_num - 1, limit=1)
            if not found or found[0].doc_num != doc_num:
                exists = queries.document_source(conn, doc_num=doc_num, with_raw=False)
                return None if exists is None else PLACEHOLDER
        document = found[0]
        if self._in_database:
            return self._from_row(document)
        job = job_for_document(self._root, document)
        if not isinstance(job, ThumbJob):
            return PLACEHOLDER  # not an image, or names that could lead out of the folder
        kept = _fresh_thumbnail(job, output_format(document.file_name))
        if kept is not None:
            return kept
        try:
            with job.tree.open_read(job.source) as handle:
                data = self._renderer.jpeg(
                    handle, name=document.file_name, box=THUMBNAIL_BOX, adjust=job.adjust
                )
        except (ThumbnailError, *_REFUSED):
            return PLACEHOLDER
        return Picture(data, "image/jpeg")

    def _from_row(self, document: queries.DocumentFile) -> Picture:
        with self._reader.connect() as conn:
            source = queries.document_source(conn, doc_num=document.doc_num, with_raw=True)
        if source is None or not source.raw_base64:
            return PLACEHOLDER
        try:
            data = self._storage.read(
                folder="", file_name=source.file_name, raw_base64=source.raw_base64
            )
            picture = self._renderer.jpeg(
                data, name=source.file_name, box=THUMBNAIL_BOX, adjust=adjust_of(document)
            )
        except (ThumbnailError, ValueError):
            return PLACEHOLDER
        return Picture(picture, "image/jpeg")

    def inbox_preview(self, path: Path, inbox: Path, *, large: bool = False) -> Picture:
        """The first page of the inbox file at ``path`` (resolved by ``inbox_file``) as a
        JPEG; the placeholder when it cannot be drawn."""
        try:
            with Tree(inbox).open_read(path) as handle:
                data = self._renderer.jpeg(
                    handle, name=path.name, box=LARGE_PREVIEW if large else SMALL_PREVIEW
                )
        except (ThumbnailError, *_REFUSED):
            return PLACEHOLDER
        return Picture(data, "image/jpeg")


def _fresh_thumbnail(job: ThumbJob, fmt: str) -> Picture | None:
    """The ``Thumbnails/`` file while it is fresh, a regular file (never a link) and in a
    format a browser shows; else None."""
    media_type = _SHOWN.get(fmt)
    if media_type is None:
        return None
    try:
        info = job.tree.lstat(job.dest)
        if not stat.S_ISREG(info.st_mode):
            return None
        if not is_fresh(datetime.fromtimestamp(info.st_mtime), job.stamp):
            return None
        return Picture(job.tree.read_bytes(job.dest), media_type)
    except _REFUSED:
        return None


def inbox_file(folders: Sequence[Path], value: str) -> tuple[Path, Path]:
    """The inbox folder and the file ``value`` (``<index>/<name>``) names: a regular file
    directly in that inbox's ``_Unmatched/`` (looked at first) or ``_Duplicates/``.
    BadInboxFileError, saying why, for anything else (another folder, ``..``, a link)."""
    index, slash, name = value.partition("/")
    if not slash or not (index.isascii() and index.isdigit()) or int(index) >= len(folders):
        raise BadInboxFileError(f"{value!r} names no inbox folder")
    if not plain(name) or name.startswith(".") or name.endswith(REASON_SUFFIX):
        raise BadInboxFileError(f"{value!r} is not the name of a file in an inbox")
    inbox = folders[int(index)]
    tree = Tree(inbox)
    for sub in (UNMATCHED, DUPLICATES):
        path = inbox / sub / name
        try:
            mode = tree.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except LinkRefusedError:
            raise BadInboxFileError(f"the inbox's {sub}/ folder is a link: refused") from None
        except _REFUSED as exc:
            raise BadInboxFileError(f"{name} cannot be read: {exc}") from None
        if stat.S_ISLNK(mode):
            raise BadInboxFileError(f"{name} is a link: refused, it could lead anywhere")
        if not stat.S_ISREG(mode):
            raise BadInboxFileError(f"{name} is not a regular file")
        return inbox, path
    raise BadInboxFileError(f"{name} is not waiting in the inbox (filed or moved already?)")


def file_value(index: int, path: Path) -> str:
    """How the page names an inbox file in URLs: ``<folder index>/<name>``."""
    return f"{index}/{path.name}"
