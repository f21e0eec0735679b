"""The pages of a scan: counted without rendering, read one at a time, a scanner's JPEG page
taken from its JPEG and showing what pdfium would render."""

from __future__ import annotations

import io

import pypdfium2
import pytest
from PIL import Image, ImageChops, ImageStat

from atoz_watcher.imaging import pages as pages_module
from atoz_watcher.imaging.pages import (
    ScanKind,
    UnreadableScanError,
    iter_pages,
    page_count,
    scan_kind,
)
from tests.support import scans


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / len(a.getbands())


def test_kinds_and_counts(tmp_path):
    content = [scans.content_page(n, dpi=50) for n in range(1, 4)]
    pdf = scans.write_pdf(content, tmp_path / "first.bin", dpi=50)  # the name says nothing
    # Fresh images: Pillow keeps the PDF writer's settings on the images it appended.
    content = [scans.content_page(n, dpi=50) for n in range(1, 4)]
    tiff = scans.write_tiff(content, tmp_path / "second.bin", dpi=50)
    png = tmp_path / "one.png"
    content[0].save(png)
    assert [scan_kind(p) for p in (pdf, tiff, png)] == [ScanKind.PDF, ScanKind.TIFF, ScanKind.IMAGE]
    assert [page_count(p) for p in (pdf, tiff, png)] == [3, 3, 1]


@pytest.mark.parametrize("grayscale", [False, True])
def test_a_scanners_jpeg_page_matches_the_rendered_page(tmp_path, monkeypatch, grayscale):
    page = scans.content_page(3, dpi=200)
    path = scans.write_pdf([page], tmp_path / "scan.pdf", dpi=200)
    (fast,) = iter_pages(path, dpi=100, grayscale=grayscale)
    monkeypatch.setattr(pages_module, "_page_jpeg", lambda _document, _index: None)
    (rendered,) = iter_pages(path, dpi=100, grayscale=grayscale)
    assert fast.mode == rendered.mode == ("L" if grayscale else "RGB")
    # libjpeg's 1/2 scale is 100 dpi (pdfium and libjpeg round the last pixel differently).
    assert fast.size == pytest.approx(rendered.size, abs=1)
    assert fast.size == pytest.approx((827, 1170), abs=1)
    fast = fast.crop((0, 0, *rendered.size))
    rendered = rendered.crop((0, 0, *fast.size))
    assert _mean_difference(fast, rendered) < 3


def test_the_jpeg_is_never_decoded_below_the_dpi_asked(tmp_path):
    path = scans.write_pdf([scans.content_page(1, dpi=200)], tmp_path / "scan.pdf", dpi=200)
    (page,) = iter_pages(path, dpi=120)
    assert page.size == scans.a4_pixels(200)  # half would be 100 dpi: too few


def test_a_rotated_pdf_page_is_rendered_not_taken_from_its_jpeg(tmp_path):
    original = scans.content_page(2, dpi=100)
    path = scans.write_pdf([original], tmp_path / "scan.pdf", dpi=100)
    document = pypdfium2.PdfDocument(path)
    document[0].set_rotation(90)
    rotated_path = tmp_path / "rotated.pdf"
    document.save(rotated_path)
    document.close()
    (page,) = iter_pages(rotated_path, dpi=100)
    assert page.size == pytest.approx((original.height, original.width), abs=1)
    expected = original.rotate(-90, expand=True).crop((0, 0, *page.size))
    page = page.crop((0, 0, *expected.size))
    assert _mean_difference(page, expected) < 3


def test_tiff_frames_come_one_by_one_and_large_ones_are_reduced(tmp_path):
    content = [scans.content_page(n, dpi=300).convert("L") for n in (1, 2)]
    path = scans.write_tiff(content, tmp_path / "scan.tif", dpi=300)
    iterator = iter_pages(path, dpi=150)
    first = next(iterator)
    assert first.size == (content[0].width // 2, content[0].height // 2)
    assert next(iterator).size == first.size
    assert next(iterator, None) is None
    (full,) = list(iter_pages(path, dpi=300))[:1]
    assert full.tobytes() == content[0].tobytes()


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n garbage",
        b"not an image at all",
        # Pillow warns, then fails; the warning is not our concern here.
        pytest.param(
            b"II*\x00broken tiff", marks=pytest.mark.filterwarnings("ignore::UserWarning")
        ),
    ],
    ids=["broken-pdf", "text", "broken-tiff"],
)
def test_an_unreadable_scan_says_so(tmp_path, data):
    path = tmp_path / "scan.pdf"
    path.write_bytes(data)
    with pytest.raises(UnreadableScanError):
        page_count(path)
    with pytest.raises(UnreadableScanError):
        list(iter_pages(path, dpi=100))


def test_a_jpeg_short_of_the_page_edges_is_rendered_with_its_margins(tmp_path):
    document = pypdfium2.PdfDocument.new()
    page = document.new_page(595, 842)  # A4 in points
    image = pypdfium2.PdfImage.new(document)
    jpeg = io.BytesIO()
    Image.new("RGB", (400, 400), "black").save(jpeg, format="JPEG")
    jpeg.seek(0)
    image.load_jpeg(jpeg, inline=True)
    image.set_matrix(pypdfium2.PdfMatrix().scale(200, 200).translate(100, 300))
    page.insert_obj(image)
    page.gen_content()
    path = tmp_path / "small.pdf"
    document.save(path)
    document.close()
    (rendered,) = iter_pages(path, dpi=72)
    assert rendered.size == (595, 842)  # the page, not the 400x400 JPEG
    assert rendered.getpixel((5, 5)) == (255, 255, 255)
    assert rendered.getpixel((200, 842 - 400)) == (0, 0, 0)
