"""The pages of a scan as PIL images, one at a time: PDF pages rendered with pdfium, the
frames of a (multi-page) TIFF, or a single image.

Memory stays bounded by one page: :func:`iter_pages` is an iterator that renders or decodes a
page when asked for it and keeps no reference to the ones before. :func:`page_count` reads no
pixels. Pages come at ``dpi`` or more: PDF pages are rendered at ``dpi``; an image or TIFF
frame that says it was scanned at twice ``dpi`` or more is shrunk by a whole factor.

A scanner's PDF page is usually one JPEG covering the page. Rendering it makes pdfium decode
the JPEG at full size (110-200 ms for an A4 page at 300 dpi on the 2-core test machine);
libjpeg decodes it at 1/2, 1/4 or 1/8 scale for about a tenth of that, so such a page is
taken from its JPEG directly, at the smallest scale that is still at least ``dpi``. Any other
page (text, vector, several images, a turned or flipped page or image, an image short of the
page's edges, another codec, CMYK) is rendered. A clip path or soft mask over the one image
is not looked for: scanners do not write them, and what is read is only searched for codes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Final

import pypdfium2
from PIL import Image, UnidentifiedImageError

from atoz_watcher.imaging.pdfium_lock import PDFIUM_LOCK

# A page larger than this is refused rather than decoded (A4 at 600 dpi is 35 MP). Under
# Pillow's own bomb warning (89.5 MP), so this refusal and its reason come first.
MAX_PAGE_PIXELS: Final = 80_000_000
_PDF_MAGIC: Final = b"%PDF-"
_MAGIC_WINDOW: Final = 1024  # pdfium, like Acrobat, finds the header within the first 1 KiB
_POINTS_PER_INCH: Final = 72
_COVER_TOLERANCE: Final = 1.0  # points: an image this close to the page's edges covers it


class UnreadableScanError(ValueError):
    """A scan whose pages cannot be read (damaged, not an image or PDF, too large)."""


class ScanKind(StrEnum):
    PDF = "pdf"
    TIFF = "tiff"
    IMAGE = "image"


def scan_kind(path: Path) -> ScanKind:
    """What ``path`` holds, by its content (a scanner's file name may say anything)."""
    with path.open("rb") as stream:
        head = stream.read(_MAGIC_WINDOW)
    if _PDF_MAGIC in head:
        return ScanKind.PDF
    if head[:4] in {b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"}:
        return ScanKind.TIFF
    return ScanKind.IMAGE


def page_count(path: Path) -> int:
    """How many pages ``path`` holds, without rendering or decoding any."""
    if scan_kind(path) is ScanKind.PDF:
        document = _open_pdf(path)
        try:
            with PDFIUM_LOCK:
                return len(document)
        finally:
            _close_pdf(document)
    with _open_image(path) as image:
        return int(getattr(image, "n_frames", 1))


def iter_pages(path: Path, *, dpi: float, grayscale: bool = False) -> Iterator[Image.Image]:
    """Each page of ``path`` in order, PDF pages rendered at ``dpi``; mode L or RGB."""
    if scan_kind(path) is ScanKind.PDF:
        yield from _pdf_pages(path, dpi=dpi, grayscale=grayscale)
    else:
        yield from _raster_pages(path, dpi=dpi, grayscale=grayscale)


def _open_pdf(path: Path) -> pypdfium2.PdfDocument:
    with PDFIUM_LOCK:
        try:
            return pypdfium2.PdfDocument(path)
        except pypdfium2.PdfiumError as exc:
            raise UnreadableScanError(f"not a readable PDF: {exc}") from exc


def _close_pdf(document: pypdfium2.PdfDocument) -> None:
    with PDFIUM_LOCK:
        document.close()


def _pdf_pages(path: Path, *, dpi: float, grayscale: bool) -> Iterator[Image.Image]:
    scale = dpi / _POINTS_PER_INCH
    document = _open_pdf(path)
    try:
        with PDFIUM_LOCK:
            count = len(document)
        for index in range(count):
            # The lock is held for pdfium's calls, never across the yield (nor for libjpeg).
            with PDFIUM_LOCK:
                jpeg = _page_jpeg(document, index)
            image = None
            if jpeg is not None:
                data, size = jpeg
                image = _decoded_jpeg(data, size=size, scale=scale, grayscale=grayscale)
            if image is None:
                with PDFIUM_LOCK:
                    image = _render_page(document, index, scale=scale, grayscale=grayscale)
            yield image
    finally:
        _close_pdf(document)


def _page_jpeg(
    document: pypdfium2.PdfDocument, index: int
) -> tuple[bytes, tuple[float, float]] | None:
    """The JPEG that is all of page ``index``, upright and covering it, and the page's size
    in points; None for any other page."""
    try:
        page = document[index]
        try:
            return _sole_jpeg(page)
        finally:
            page.close()
    except pypdfium2.PdfiumError:
        return None


def _sole_jpeg(page: pypdfium2.PdfPage) -> tuple[bytes, tuple[float, float]] | None:
    objects = list(page.get_objects(max_depth=0)) if page.get_rotation() == 0 else []
    image = objects[0] if len(objects) == 1 else None
    if not isinstance(image, pypdfium2.PdfImage) or image.get_filters() != ["DCTDecode"]:
        return None
    matrix = image.get_matrix()
    upright = matrix.b == 0 and matrix.c == 0 and matrix.a > 0 and matrix.d > 0
    box = page.get_cropbox()
    bounds = image.get_bounds()
    covers = all(
        abs(edge - limit) <= _COVER_TOLERANCE for edge, limit in zip(bounds, box, strict=True)
    )
    if not (upright and covers):
        return None
    return bytes(image.get_data()), page.get_size()


def _decoded_jpeg(
    data: bytes, *, size: tuple[float, float], scale: float, grayscale: bool
) -> Image.Image | None:
    """``data`` decoded at the smallest libjpeg scale that keeps ``scale`` pixels a point."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            if image.mode not in {"L", "RGB"}:
                # CMYK (PDF and Pillow may disagree on its inversion) or anything unusual.
                return None
            if image.width * image.height > MAX_PAGE_PIXELS:
                return None
            wanted = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            image.draft("L" if grayscale else image.mode, wanted)
            return _normalised(image, grayscale=grayscale)
    except (UnidentifiedImageError, OSError):
        return None


def _render_page(
    document: pypdfium2.PdfDocument, index: int, *, scale: float, grayscale: bool
) -> Image.Image:
    try:
        page = document[index]
        try:
            width, height = page.get_size()
            if width * height * scale * scale > MAX_PAGE_PIXELS:
                raise UnreadableScanError(f"page {index + 1} is too large to render")
            bitmap = page.render(scale=scale, grayscale=grayscale)
            try:
                # The image shares the bitmap's buffer: copy it before the bitmap is freed.
                image: Image.Image = bitmap.to_pil().copy()
            finally:
                bitmap.close()
        finally:
            page.close()
    except pypdfium2.PdfiumError as exc:
        raise UnreadableScanError(f"page {index + 1} cannot be rendered: {exc}") from exc
    return _normalised(image, grayscale=grayscale)


def _open_image(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError) as exc:
        raise UnreadableScanError(f"not a readable image or PDF: {exc}") from exc
    width, height = image.size
    if width * height > MAX_PAGE_PIXELS:
        image.close()
        raise UnreadableScanError(f"a page of {width}x{height} pixels is too large")
    return image


def _raster_pages(path: Path, *, dpi: float, grayscale: bool) -> Iterator[Image.Image]:
    with _open_image(path) as image:
        for index in range(int(getattr(image, "n_frames", 1))):
            try:
                image.seek(index)
                width, height = image.size
                if width * height > MAX_PAGE_PIXELS:
                    raise UnreadableScanError(f"page {index + 1} is too large")
                page = _reduced(_normalised(image, grayscale=grayscale), image, dpi=dpi)
            except (OSError, EOFError, ValueError) as exc:
                if isinstance(exc, UnreadableScanError):
                    raise
                raise UnreadableScanError(f"page {index + 1} cannot be read: {exc}") from exc
            yield page


def _reduced(page: Image.Image, frame: Image.Image, *, dpi: float) -> Image.Image:
    """``page`` shrunk by the largest whole factor that keeps it at ``dpi`` or more, when its
    frame says at what resolution it was scanned (a box filter: cheap, no new detail)."""
    scanned = frame.info.get("dpi")
    if not scanned:
        return page
    factor = int(min(float(scanned[0]), float(scanned[1])) // dpi)
    return page.reduce(factor) if factor >= 2 else page  # noqa: PLR2004 - 1 is no reduction


def _normalised(image: Image.Image, *, grayscale: bool) -> Image.Image:
    """``image`` as a new L (grey) or RGB image; anything else (1, P, CMYK, I;16...) converted."""
    mode = "L" if grayscale else ("L" if image.mode in {"1", "L", "LA", "I;16"} else "RGB")
    if image.mode == mode:
        return image.copy()
    return image.convert(mode)
