"""Real scans for the scanner inbox's tests: pages with checkable content, cover sheets made
by ``imaging/coversheet.py``, degraded as a scanner would, saved as PDFs and multi-page TIFFs.

A content page carries its number twice: in large type (for a person) and as a Code 128
``PAGE-<n>`` tag (for the tests: :func:`page_numbers` reads it back after splitting, whatever
the page's rotation). The tag is also a foreign barcode on every page, which the cover code
finder must ignore.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from atoz_watcher.imaging.coversheet import CoverSheet, PaperSize, write_cover_sheet
from atoz_watcher.imaging.pages import iter_pages

A4_MM = (210, 297)
PAGE_TAG = "PAGE-"


def a4_pixels(dpi: int) -> tuple[int, int]:
    return round(A4_MM[0] / 25.4 * dpi), round(A4_MM[1] / 25.4 * dpi)


def _barcode(text: str, fmt: zxingcpp.BarcodeFormat, scale: int) -> Image.Image:
    barcode = zxingcpp.create_barcode(text, fmt)
    return Image.fromarray(np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=scale)))


def content_page(number: int, *, dpi: int) -> Image.Image:
    """A page of 'text' with its number in large type and in a Code 128 tag."""
    size = a4_pixels(dpi)
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    unit = dpi / 25.4  # pixels per mm
    draw.text(
        (20 * unit, 20 * unit), f"Page {number}", font=ImageFont.load_default(size=round(15 * unit))
    )
    rng = random.Random(number)
    y = 50 * unit
    while y < size[1] - 60 * unit:
        width = rng.uniform(80, 170) * unit
        draw.rectangle((20 * unit, y, 20 * unit + width, y + 2 * unit), fill=(60, 60, 60))
        y += 6 * unit
    tag = _barcode(f"{PAGE_TAG}{number:04d}", zxingcpp.BarcodeFormat.Code128, max(2, dpi // 75))
    page.paste(tag, (round(20 * unit), size[1] - round(45 * unit)))
    return page


def cover_page(sheet: CoverSheet, *, dpi: int) -> Image.Image:
    """The cover sheet as ``atoz-watcher cover-sheet`` writes it, printed and scanned at
    ``dpi`` (the PDF rendered back)."""
    buffer = io.BytesIO()
    write_cover_sheet(sheet, buffer, paper=PaperSize.A4)
    path_pages = _pdf_pages_from_bytes(buffer.getvalue(), dpi=dpi)
    (page,) = path_pages
    return page


def _pdf_pages_from_bytes(data: bytes, *, dpi: int) -> list[Image.Image]:
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sheet.pdf"
        path.write_bytes(data)
        return [page.convert("RGB") for page in iter_pages(path, dpi=dpi)]


def foreign_qr_page(text: str, *, dpi: int) -> Image.Image:
    """A page with somebody else's QR code (a URL, a vCard) where a cover code would be."""
    page = Image.new("RGB", a4_pixels(dpi), "white")
    qr = _barcode(text, zxingcpp.BarcodeFormat.QRCode, max(4, dpi // 20))
    page.paste(qr, ((page.width - qr.width) // 2, round(40 / 25.4 * dpi)))
    return page


def paint_over(page: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """``page`` with a white patch over ``box`` (fractions of width and height), as a sticker
    or correction fluid would leave it."""
    damaged = page.copy()
    width, height = page.size
    left, top, right, bottom = box
    ImageDraw.Draw(damaged).rectangle(
        (left * width, top * height, right * width, bottom * height), fill="white"
    )
    return damaged


@dataclass(frozen=True, slots=True)
class Degradation:
    """What a scanner does to paper. ``dpi`` is set by who draws the page; the rest here."""

    rotate: int = 0  # 0, 90, 180 or 270, counter-clockwise (the page fed sideways)
    skew: float = 0.0  # degrees (the page fed crooked)
    grey: bool = False
    jpeg_quality: int | None = None  # JPEG artefacts at this quality
    noise: float = 0.0  # standard deviation of sensor noise, in grey levels
    seed: int = 0

    @property
    def label(self) -> str:
        parts = [
            f"rot{self.rotate}" if self.rotate else "",
            f"skew{self.skew:g}" if self.skew else "",
            "grey" if self.grey else "",
            f"jpeg{self.jpeg_quality}" if self.jpeg_quality else "",
            f"noise{self.noise:g}" if self.noise else "",
        ]
        return "-".join(p for p in parts if p) or "clean"


DEGRADATIONS = (
    Degradation(),
    Degradation(rotate=90),
    Degradation(rotate=180),
    Degradation(rotate=270),
    Degradation(skew=1.5),
    Degradation(skew=-2.0),
    Degradation(grey=True),
    Degradation(jpeg_quality=30, noise=12.0),
    Degradation(rotate=180, skew=1.0, grey=True, jpeg_quality=40, noise=8.0),
)


def degrade(page: Image.Image, how: Degradation) -> Image.Image:
    image = page
    if how.skew:
        image = image.rotate(
            how.skew, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white"
        )
    if how.rotate:
        image = image.rotate(how.rotate, expand=True)
    if how.grey:
        image = image.convert("L")
    if how.noise:
        rng = np.random.default_rng(how.seed)
        pixels = np.asarray(image, dtype=np.float32)
        pixels = pixels + rng.normal(0.0, how.noise, pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode=image.mode)
    if how.jpeg_quality:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=how.jpeg_quality)
        buffer.seek(0)
        image = Image.open(buffer)
        image.load()
    return image


def write_pdf(pages: Sequence[Image.Image], path: Path, *, dpi: int) -> Path:
    """A scanner's PDF: one JPEG image per page at ``dpi``."""
    first, *rest = pages
    first.save(path, format="PDF", save_all=True, append_images=rest, resolution=dpi)
    return path


def write_tiff(
    pages: Sequence[Image.Image], path: Path, *, dpi: int, compression: str = "tiff_lzw"
) -> Path:
    """A scanner's multi-page TIFF."""
    first, *rest = pages
    first.save(
        path,
        format="TIFF",
        save_all=True,
        append_images=rest,
        dpi=(dpi, dpi),
        compression=compression,
    )
    return path


@dataclass(frozen=True, slots=True)
class Cover:
    sheet: CoverSheet


def batch_pages(
    items: Iterable[Cover | int], *, dpi: int, how: Degradation = Degradation()
) -> list[Image.Image]:
    """Pages for ``items``: a :class:`Cover` is a cover sheet, an int a numbered content page."""
    pages = []
    for index, item in enumerate(items):
        page = (
            cover_page(item.sheet, dpi=dpi)
            if isinstance(item, Cover)
            else content_page(item, dpi=dpi)
        )
        seeded = Degradation(
            how.rotate, how.skew, how.grey, how.jpeg_quality, how.noise, seed=how.seed + index
        )
        pages.append(degrade(page, seeded))
    return pages


def page_numbers(path: Path, *, dpi: int = 150) -> list[int | None]:
    """The number each page of ``path`` carries in its tag (None: no tag, e.g. a cover)."""
    numbers: list[int | None] = []
    for page in iter_pages(path, dpi=dpi, grayscale=True):
        tags = [
            barcode.text
            for barcode in zxingcpp.read_barcodes(
                page, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.Code128)
            )
            if barcode.text.startswith(PAGE_TAG)
        ]
        numbers.append(int(tags[0].removeprefix(PAGE_TAG)) if len(tags) == 1 else None)
    return numbers
