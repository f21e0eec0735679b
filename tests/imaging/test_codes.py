"""Cover codes found on scanned pages: every degradation a scanner adds still decodes, the
Code 128 stands in for a damaged QR code, and foreign or damaged codes never route."""

from __future__ import annotations

from datetime import date

import pytest
import zxingcpp

from atoz_watcher.imaging.codes import find_codes, scan_codes
from atoz_watcher.imaging.coversheet import CoverSheet
from atoz_watcher.rules.cover import CoverCode, encode, plan_parts
from tests.support import scans

SHEET = CoverSheet(18, "Jane Doe", date(1980, 4, 1), 5, "X-Rays")
CODE = CoverCode(18, 5)
# Where the codes are on the sheet (fractions of the page), with room to spare.
QR_BOX = (0.3, 0.08, 0.7, 0.31)
QR_RIGHT_HALF = (0.5, 0.08, 0.7, 0.31)
CODE128_BOX = (0.0, 0.85, 1.0, 0.95)
CODE128_RIGHT_HALF = (0.5, 0.85, 1.0, 0.95)


@pytest.mark.parametrize("how", scans.DEGRADATIONS, ids=lambda how: how.label)
@pytest.mark.parametrize("dpi", [200, 300])
def test_every_degradation_decodes_in_a_pdf(tmp_path, dpi, how):
    pages = [
        scans.degrade(scans.cover_page(SHEET, dpi=dpi), how),
        scans.degrade(scans.content_page(7, dpi=dpi), how),
    ]
    path = scans.write_pdf(pages, tmp_path / "scan.pdf", dpi=dpi)
    assert scan_codes(path) == [{CODE}, frozenset()]


@pytest.mark.parametrize("dpi", [200, 300])
def test_every_degradation_decodes_in_a_tiff(tmp_path, dpi):
    cover = scans.cover_page(SHEET, dpi=dpi)
    pages = [scans.degrade(cover, how).convert("RGB") for how in scans.DEGRADATIONS]
    path = scans.write_tiff(pages, tmp_path / "scan.tif", dpi=dpi)
    assert scan_codes(path) == [{CODE}] * len(scans.DEGRADATIONS)


@pytest.mark.parametrize(
    "how",
    [
        scans.Degradation(),
        scans.Degradation(rotate=90),
        scans.Degradation(rotate=180),
        scans.Degradation(skew=1.5),
        scans.Degradation(jpeg_quality=30, noise=12.0, grey=True),
    ],
    ids=lambda how: how.label,
)
def test_the_code_128_stands_in_for_a_lost_qr_code(tmp_path, how):
    cover = scans.paint_over(scans.cover_page(SHEET, dpi=200), QR_BOX)
    path = scans.write_pdf([scans.degrade(cover, how)], tmp_path / "scan.pdf", dpi=200)
    assert scan_codes(path) == [{CODE}]


def test_a_qr_code_with_a_small_stain_still_reads_as_its_patient(tmp_path):
    # Error correction level H: a stamp over a corner of the code loses nothing.
    cover = scans.cover_page(SHEET, dpi=200)
    cover = scans.paint_over(scans.paint_over(cover, CODE128_BOX), (0.58, 0.22, 0.64, 0.28))
    path = scans.write_pdf([cover], tmp_path / "scan.pdf", dpi=200)
    assert scan_codes(path) == [{CODE}]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param((QR_RIGHT_HALF, CODE128_BOX), id="half-qr-no-code128"),
        pytest.param((QR_BOX, CODE128_RIGHT_HALF), id="no-qr-half-code128"),
        pytest.param((QR_RIGHT_HALF, CODE128_RIGHT_HALF), id="half-of-each"),
    ],
)
def test_a_damaged_code_is_never_routed(tmp_path, damage):
    cover = scans.cover_page(SHEET, dpi=200)
    for box in damage:
        cover = scans.paint_over(cover, box)
    path = scans.write_pdf([cover, scans.content_page(1, dpi=200)], tmp_path / "scan.pdf", dpi=200)
    codes = scan_codes(path)
    assert codes == [frozenset(), frozenset()]
    assert not plan_parts(codes).has_covers


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("https://example.com/patient/18", id="url"),
        pytest.param("BEGIN:VCARD\nVERSION:3.0\nFN:Jane Doe\nEND:VCARD", id="vcard"),
        pytest.param(encode(18, 5)[:-1] + "A", id="wrong-check"),
        pytest.param(encode(18, 5).replace(":18:", ":19:"), id="misread-patnum"),
        pytest.param("ATZ1:18:5", id="no-check"),
    ],
)
def test_a_foreign_qr_code_is_never_routed(tmp_path, text):
    page = scans.foreign_qr_page(text, dpi=200)
    path = scans.write_pdf([page], tmp_path / "scan.pdf", dpi=200)
    # The foreign code is there and readable: it is refused, not missed.
    assert [b.text for b in zxingcpp.read_barcodes(page)] == [text]
    assert scan_codes(path) == [frozenset()]


def test_two_patients_on_one_page_are_both_reported():
    first = scans.paint_over(scans.cover_page(CoverSheet(18, "A"), dpi=200), CODE128_BOX)
    second = scans.cover_page(CoverSheet(19, "B"), dpi=200)
    width, height = second.size
    qr = second.crop((round(0.3 * width), round(0.08 * height), round(0.7 * width), height // 3))
    first.paste(qr, (0, height // 2))  # the second patient's QR code beside the first's
    found = find_codes(first.convert("L"))
    assert found == {CoverCode(18), CoverCode(19)}
    assert plan_parts([found, set()]).conflicts == (0,)
