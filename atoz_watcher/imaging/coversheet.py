"""A printable cover sheet: one PDF page with the patient's code as a QR code and a Code 128,
and the patient's name, PatNum, birth date and category in large type to check by eye.

Takes plain values (the caller looks the patient up). Drawn in black and white at
:data:`DPI`, so the PDF holds one CCITT G4 image: small, and sharp wherever it is printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from atoz_watcher.db.queries import PatientCard
from atoz_watcher.rules.cover import encode
from atoz_watcher.rules.naming import ImageCategory
from atoz_watcher.rules.patient_names import name_lf

DPI: Final = 300
_MM: Final = DPI / 25.4  # pixels per millimetre
_MARGIN: Final = round(15 * _MM)
_QR_SIDE: Final = round(55 * _MM)  # large enough for a fax-quality scan or a 100 dpi render
_CODE128_MODULE: Final = 5  # pixels (0.42 mm): 2 pixels still at a 150 dpi render
_CODE128_HEIGHT: Final = round(15 * _MM)
_TITLE_SIZE: Final = round(6 * _MM)
_VALUE_SIZE: Final = round(9 * _MM)
_NOTE_SIZE: Final = round(4 * _MM)
_LINE_GAP: Final = round(4 * _MM)
# Found by Pillow in the system's font folders (Linux, Windows, macOS).
_FONTS: Final = ("DejaVuSans.ttf", "arial.ttf", "Arial.ttf", "LiberationSans-Regular.ttf")


class PaperSize(StrEnum):
    """Paper sizes, in pixels at :data:`DPI`."""

    A4 = "a4"
    LETTER = "letter"

    @property
    def pixels(self) -> tuple[int, int]:
        if self is PaperSize.A4:
            return round(210 * _MM), round(297 * _MM)
        return round(8.5 * DPI), round(11 * DPI)


@dataclass(frozen=True, slots=True)
class CoverSheet:
    """What a cover sheet shows. ``category`` goes into the code (a DefNum or a name);
    ``category_label`` is what staff read (the category's name), defaulting to ``category``.
    """

    pat_num: int
    patient_name: str
    birth_date: date | None = None
    category: int | str | None = None
    category_label: str | None = None

    @property
    def payload(self) -> str:
        return encode(self.pat_num, self.category)


def sheet_for(card: PatientCard, category: ImageCategory | None) -> CoverSheet:
    """The sheet of a patient (as ``db.queries.patient_card`` reads one) and an image category:
    the code names the category by its DefNum (what the inbox files under, whatever it is
    renamed to later); the sheet shows its name."""
    return CoverSheet(
        pat_num=card.pat_num,
        patient_name=name_lf(card.lname, card.fname, card.preferred, card.middle_initial),
        birth_date=card.birth_date,
        category=None if category is None else category.def_num,
        category_label=None if category is None else category.name,
    )


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A system font that has accented letters when there is one (Pillow's own font has
    ASCII only, and a patient's name must read right), else Pillow's own."""
    for name in _FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _fitted(
    draw: ImageDraw.ImageDraw, text: str, size: int, width: int
) -> tuple[str, ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    """``text`` in the font at ``size``, smaller until it fits ``width`` (a long name), and
    cut with an ellipsis when even the smallest size does not fit."""
    while True:
        font = _font(size)
        if draw.textlength(text, font=font) <= width:
            return text, font
        if size > _NOTE_SIZE:
            size = max(_NOTE_SIZE, size * 9 // 10)
            continue
        while len(text) > 1 and draw.textlength(text + "\u2026", font=font) > width:
            text = text[:-1]
        return text + "\u2026", font


def _barcode(payload: str, fmt: zxingcpp.BarcodeFormat, scale: int) -> Image.Image:
    if fmt is zxingcpp.BarcodeFormat.QRCode:
        # The highest error correction: a fold, a stamp or a staple hole still decodes.
        barcode = zxingcpp.create_barcode(payload, fmt, ec_level="H")
    else:
        barcode = zxingcpp.create_barcode(payload, fmt)
    pixels = np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=scale))
    return Image.fromarray(pixels).convert("1")


def draw_cover_sheet(sheet: CoverSheet, *, paper: PaperSize = PaperSize.A4) -> Image.Image:
    """The cover sheet as a black-and-white page at :data:`DPI`."""
    width, height = paper.pixels
    page = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(page)
    text_width = width - 2 * _MARGIN
    y = _MARGIN

    draw.text((_MARGIN, y), "Cover sheet: scan the pages after this one", font=_font(_TITLE_SIZE))
    y += _TITLE_SIZE + 2 * _LINE_GAP

    payload = sheet.payload
    probe = _barcode(payload, zxingcpp.BarcodeFormat.QRCode, 1)
    qr = _barcode(payload, zxingcpp.BarcodeFormat.QRCode, max(1, _QR_SIDE // probe.width))
    page.paste(qr, ((width - qr.width) // 2, y))
    y += qr.height + 2 * _LINE_GAP

    lines = [
        ("Patient", sheet.patient_name),
        ("PatNum", str(sheet.pat_num)),
        ("Born", sheet.birth_date.isoformat() if sheet.birth_date else "-"),
        ("Category", _category_label(sheet)),
    ]
    label_font = _font(_NOTE_SIZE)
    for label, value in lines:
        draw.text((_MARGIN, y), label, font=label_font)
        y += _NOTE_SIZE + _LINE_GAP // 2
        shown, font = _fitted(draw, value, _VALUE_SIZE, text_width)
        draw.text((_MARGIN, y), shown, font=font)
        y += _VALUE_SIZE + _LINE_GAP

    code128 = _barcode(payload, zxingcpp.BarcodeFormat.Code128, _CODE128_MODULE)
    code128 = code128.resize((code128.width, _CODE128_HEIGHT))
    y = max(y + _LINE_GAP, height - _MARGIN - _CODE128_HEIGHT - _NOTE_SIZE - _LINE_GAP)
    page.paste(code128, ((width - code128.width) // 2, y))
    y += _CODE128_HEIGHT + _LINE_GAP // 2
    note = "Check the name before scanning. One sheet per patient; it is not filed."
    shown, font = _fitted(draw, note, _NOTE_SIZE, text_width)
    draw.text((_MARGIN, y), shown, font=font)
    return page


def _category_label(sheet: CoverSheet) -> str:
    if sheet.category_label is not None:
        return sheet.category_label
    if sheet.category is None:
        return "(the inbox's category)"
    return str(sheet.category)


def write_cover_sheet(
    sheet: CoverSheet, dest: Path | BinaryIO, *, paper: PaperSize = PaperSize.A4
) -> None:
    """Write the cover sheet to ``dest`` as a one-page PDF."""
    draw_cover_sheet(sheet, paper=paper).save(dest, format="PDF", resolution=DPI)
