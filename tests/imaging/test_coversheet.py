"""The printable cover sheet: one PDF page whose code reads back as the patient and category."""

from __future__ import annotations

from datetime import date

import pytest
import zxingcpp

from atoz_watcher.imaging.codes import DPI, find_codes, scan_codes
from atoz_watcher.imaging.coversheet import CoverSheet, PaperSize, write_cover_sheet
from atoz_watcher.imaging.pages import iter_pages, page_count
from atoz_watcher.rules.cover import CoverCode, encode

POINTS_PER_MM = 72 / 25.4


@pytest.mark.parametrize(
    ("paper", "size_mm"),
    [(PaperSize.A4, (210, 297)), (PaperSize.LETTER, (215.9, 279.4))],
)
@pytest.mark.parametrize(
    ("category", "expected"),
    [(None, CoverCode(18)), (5, CoverCode(18, 5)), ("X-Rays", CoverCode(18, "X-Rays"))],
)
def test_the_pdf_round_trips(tmp_path, paper, size_mm, category, expected):
    sheet = CoverSheet(18, "Zoë Ångström", date(1980, 4, 1), category)
    path = tmp_path / "cover.pdf"
    write_cover_sheet(sheet, path, paper=paper)

    assert path.read_bytes().startswith(b"%PDF-")
    assert page_count(path) == 1
    (page,) = iter_pages(path, dpi=72)
    width_mm, height_mm = size_mm
    assert page.size == pytest.approx((width_mm * POINTS_PER_MM, height_mm * POINTS_PER_MM), abs=1)
    assert scan_codes(path) == [frozenset({expected})]


def test_both_codes_carry_the_payload(tmp_path):
    sheet = CoverSheet(4242, "Jane Doe", None, 7)
    path = tmp_path / "cover.pdf"
    write_cover_sheet(sheet, path)
    (page,) = iter_pages(path, dpi=DPI, grayscale=True)
    found = {
        (barcode.format, barcode.text)
        for barcode in zxingcpp.read_barcodes(
            page,
            formats=zxingcpp.BarcodeFormats(
                [zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Code128]
            ),
        )
    }
    assert found == {
        (zxingcpp.BarcodeFormat.QRCode, encode(4242, 7)),
        (zxingcpp.BarcodeFormat.Code128, encode(4242, 7)),
    }
    assert find_codes(page) == {CoverCode(4242, 7)}


def test_the_sheet_shows_the_patient_in_large_type():
    # Readable by eye: the name's line is drawn, and a longer name is shrunk to fit the page.
    from atoz_watcher.imaging.coversheet import draw_cover_sheet  # noqa: PLC0415

    short = draw_cover_sheet(CoverSheet(18, "Al Bo"))
    long_name = "Wolfeschlegelsteinhausenbergerdorff-Ångström " * 3
    long = draw_cover_sheet(CoverSheet(18, long_name))
    assert short.mode == long.mode == "1"
    for page in (short, long):
        right_margin = page.convert("L").crop((page.width - 100, 0, page.width, page.height))
        assert right_margin.getextrema() == (255, 255), "text runs off the page"
        name_line = page.convert("L").crop((0, 1100, page.width, 1300))
        assert name_line.getextrema() == (0, 255), "no name drawn"
    assert short.tobytes() != long.tobytes()


def test_an_invalid_patient_is_refused(tmp_path):
    with pytest.raises(ValueError, match="PatNum"):
        write_cover_sheet(CoverSheet(0, "Nobody"), tmp_path / "cover.pdf")
    assert not (tmp_path / "cover.pdf").exists()
