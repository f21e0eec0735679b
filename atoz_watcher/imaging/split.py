"""Split a multi-page scan into parts, one file per part, the pages' content unchanged.

PDF parts are made by pdfium importing the source's pages into a new document: the page
objects are copied, not re-rendered or re-compressed. TIFF frames are decoded and written
again losslessly (their own compression when it is lossless, else Deflate), one frame in
memory at a time. Cover pages are dropped simply by not being in any part.

Each part is written to the path the caller gives, created exclusively (an existing file is
never overwritten); a part that fails is removed, so a path either holds a whole part or
nothing. Whether to write into a temporary name and rename is the caller's decision.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import pypdfium2
from PIL import Image, TiffImagePlugin, UnidentifiedImageError

from atoz_watcher.imaging.pages import ScanKind, UnreadableScanError, scan_kind
from atoz_watcher.imaging.pdfium_lock import PDFIUM_LOCK

# TIFF compressions Pillow writes without loss; a JPEG-compressed frame is written with Deflate
# rather than re-encoded (a second JPEG pass would change the page).
_LOSSLESS: Final = frozenset({"raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits"})
_BILEVEL_ONLY: Final = frozenset({"group3", "group4", "tiff_ccitt"})
_FALLBACK: Final = "tiff_adobe_deflate"


@dataclass(frozen=True, slots=True)
class PartFile:
    """The pages (0-based, in the order wanted) of one part, and where to write it."""

    pages: tuple[int, ...]
    dest: Path


def split_scan(source: Path, parts: Sequence[PartFile]) -> None:
    """Write each of ``parts`` of the PDF or TIFF at ``source`` to its path."""
    for part in parts:
        if not part.pages:
            # pdfium would take an empty page list as "every page".
            raise ValueError(f"a part must have pages ({part.dest.name} has none)")
    kind = scan_kind(source)
    if kind is ScanKind.PDF:
        _split_pdf(source, parts)
    elif kind is ScanKind.TIFF:
        _split_tiff(source, parts)
    else:
        raise ValueError("only PDFs and TIFFs have pages to split")


def _split_pdf(source: Path, parts: Sequence[PartFile]) -> None:
    with PDFIUM_LOCK:
        try:
            document = pypdfium2.PdfDocument(source)
        except pypdfium2.PdfiumError as exc:
            raise UnreadableScanError(f"not a readable PDF: {exc}") from exc
    try:
        with PDFIUM_LOCK:
            count = len(document)
        for part in parts:
            _check_pages(part, count)
            with PDFIUM_LOCK, _write_exclusively(part.dest) as stream:
                out = pypdfium2.PdfDocument.new()
                try:
                    out.import_pages(document, list(part.pages))
                    out.save(stream)
                finally:
                    out.close()
    finally:
        with PDFIUM_LOCK:
            document.close()


def _split_tiff(source: Path, parts: Sequence[PartFile]) -> None:
    try:
        image = Image.open(source, formats=["TIFF"])
    except (UnidentifiedImageError, OSError) as exc:
        raise UnreadableScanError(f"not a readable TIFF: {exc}") from exc
    with image:
        count = int(getattr(image, "n_frames", 1))
        for part in parts:
            _check_pages(part, count)
            with (
                _write_exclusively(part.dest) as stream,
                TiffImagePlugin.AppendingTiffWriter(stream, new=True) as writer,
            ):
                for index in part.pages:
                    image.seek(index)
                    image.load()
                    image.save(writer, format="TIFF", **_tiff_params(image))
                    writer.newFrame()


def _tiff_params(frame: Image.Image) -> dict[str, object]:
    compression = frame.info.get("compression", "raw")
    if compression not in _LOSSLESS and not (compression in _BILEVEL_ONLY and frame.mode == "1"):
        compression = _FALLBACK
    params: dict[str, object] = {"compression": compression}
    if "dpi" in frame.info:
        params["dpi"] = frame.info["dpi"]
    return params


def _check_pages(part: PartFile, count: int) -> None:
    bad = [page for page in part.pages if not 0 <= page < count]
    if bad:
        raise ValueError(f"pages {bad} are not in a scan of {count} pages")


@contextmanager
def _write_exclusively(dest: Path) -> Iterator[BinaryIO]:
    """``dest``, created for writing and synced on success; removed if the block fails."""
    stream = dest.open("xb+")  # read too: the TIFF writer reads back its IFDs
    try:
        with stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
