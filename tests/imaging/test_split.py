"""A batch scan split by its cover sheets: the right pages in each part, checked by the pages'
own content after splitting, in PDF and TIFF; the pages' content is not re-encoded."""

from __future__ import annotations

from datetime import date

import pypdfium2
import pytest
from PIL import Image

from atoz_watcher.imaging.codes import scan_codes
from atoz_watcher.imaging.coversheet import CoverSheet
from atoz_watcher.imaging.pages import page_count
from atoz_watcher.imaging.split import PartFile, split_scan
from atoz_watcher.rules.cover import CoverCode, plan_parts
from tests.support import scans

ANNA = CoverSheet(18, "Anna A", date(1980, 4, 1), 5, "X-Rays")
BEN = CoverSheet(19, "Ben B", date(1975, 1, 2))
CLARA = CoverSheet(20, "Clara C", None, "Forms")
# 3 patients, 12 pages: 3 cover sheets and 9 numbered pages.
BATCH = [
    scans.Cover(ANNA), 1, 2, 3,
    scans.Cover(BEN), 4, 5,
    scans.Cover(CLARA), 6, 7, 8, 9,
]  # fmt: skip
EXPECTED = {
    CoverCode(18, 5): [1, 2, 3],
    CoverCode(19): [4, 5],
    CoverCode(20, "Forms"): [6, 7, 8, 9],
}


def _split_by_covers(source, folder, suffix):
    """Find the codes, plan the parts, split: the pipeline the inbox runs."""
    plan = plan_parts(scan_codes(source))
    parts = {}
    for index, part in enumerate(plan.parts):
        assert part.code is not None
        dest = folder / f"part{index}{suffix}"
        parts[part.code] = dest
        split_scan(source, [PartFile(part.pages, dest)])
    return plan, parts


@pytest.mark.parametrize(
    "how",
    [scans.Degradation(), scans.Degradation(rotate=180, skew=1.0, grey=True, jpeg_quality=40)],
    ids=lambda how: how.label,
)
def test_a_three_patient_pdf_splits_into_three_parts(tmp_path, how):
    source = scans.write_pdf(
        scans.batch_pages(BATCH, dpi=200, how=how), tmp_path / "b.pdf", dpi=200
    )
    plan, parts = _split_by_covers(source, tmp_path, ".pdf")
    assert plan.empty_covers == plan.conflicts == ()
    assert set(parts) == set(EXPECTED)
    for code, path in parts.items():
        assert scans.page_numbers(path) == EXPECTED[code], code
    assert page_count(source) == 12  # the original is left whole


def test_a_three_patient_tiff_splits_into_three_parts(tmp_path):
    pages = scans.batch_pages(BATCH, dpi=200, how=scans.Degradation(rotate=90, grey=True))
    source = scans.write_tiff(pages, tmp_path / "b.tif", dpi=200)
    _plan, parts = _split_by_covers(source, tmp_path, ".tif")
    assert set(parts) == set(EXPECTED)
    for code, path in parts.items():
        assert scans.page_numbers(path) == EXPECTED[code], code


def _jpeg_streams(path):
    document = pypdfium2.PdfDocument(path)
    try:
        streams = []
        for index in range(len(document)):
            page = document[index]
            (image,) = page.get_objects()
            streams.append(bytes(image.get_data()))
            page.close()
        return streams
    finally:
        document.close()


def test_pdf_pages_are_copied_not_re_encoded(tmp_path):
    pages = [scans.content_page(n, dpi=100) for n in range(1, 6)]
    source = scans.write_pdf(pages, tmp_path / "b.pdf", dpi=100)
    split_scan(
        source, [PartFile((1, 3), tmp_path / "a.pdf"), PartFile((4, 0), tmp_path / "b2.pdf")]
    )
    original = _jpeg_streams(source)
    assert _jpeg_streams(tmp_path / "a.pdf") == [original[1], original[3]]
    assert _jpeg_streams(tmp_path / "b2.pdf") == [original[4], original[0]]


@pytest.mark.parametrize("compression", ["tiff_lzw", "jpeg", "raw", "packbits"])
def test_tiff_frames_keep_their_pixels(tmp_path, compression):
    pages = [scans.content_page(n, dpi=60).convert("L") for n in range(1, 5)]
    source = scans.write_tiff(pages, tmp_path / "b.tif", dpi=60, compression=compression)
    dest = tmp_path / "part.tif"
    split_scan(source, [PartFile((2, 0), dest)])
    with Image.open(source) as original, Image.open(dest) as part:
        assert part.n_frames == 2
        for part_index, source_index in enumerate((2, 0)):
            original.seek(source_index)
            part.seek(part_index)
            assert part.tobytes() == original.tobytes()
            assert part.info["dpi"] == pytest.approx((60, 60))
            assert part.info["compression"] != "jpeg"  # never a second lossy pass


def test_pages_before_the_first_cover_sheet_are_their_own_part(tmp_path):
    pages = scans.batch_pages([1, 2, scans.Cover(BEN), 3], dpi=150)
    source = scans.write_pdf(pages, tmp_path / "b.pdf", dpi=150)
    plan = plan_parts(scan_codes(source))
    assert [(p.code, p.pages) for p in plan.parts] == [(None, (0, 1)), (CoverCode(19), (3,))]


@pytest.mark.parametrize("kind", ["pdf", "jpg", "png"])
def test_a_single_cover_sheet_gives_no_part(tmp_path, kind):
    page = scans.cover_page(BEN, dpi=150)
    source = tmp_path / f"b.{kind}"
    if kind == "pdf":
        scans.write_pdf([page], source, dpi=150)
    else:
        page.save(source, dpi=(150, 150))
    plan = plan_parts(scan_codes(source))
    assert plan.parts == ()
    assert plan.empty_covers == (0,)


class TestRefusals:
    @pytest.fixture
    def source(self, tmp_path):
        pages = [scans.content_page(n, dpi=50) for n in range(1, 4)]
        return scans.write_pdf(pages, tmp_path / "b.pdf", dpi=50)

    def test_an_empty_part(self, tmp_path, source):
        with pytest.raises(ValueError, match="has none"):
            split_scan(source, [PartFile((), tmp_path / "p.pdf")])
        assert not (tmp_path / "p.pdf").exists()

    def test_a_page_out_of_range_leaves_no_file(self, tmp_path, source):
        with pytest.raises(ValueError, match=r"pages \[3\]"):
            split_scan(source, [PartFile((0, 3), tmp_path / "p.pdf")])
        assert not (tmp_path / "p.pdf").exists()

    def test_an_existing_file_is_not_overwritten(self, tmp_path, source):
        (tmp_path / "p.pdf").write_bytes(b"mine")
        with pytest.raises(FileExistsError):
            split_scan(source, [PartFile((0,), tmp_path / "p.pdf")])
        assert (tmp_path / "p.pdf").read_bytes() == b"mine"

    def test_a_single_image_has_no_pages_to_split(self, tmp_path):
        path = tmp_path / "one.jpg"
        scans.content_page(1, dpi=50).save(path)
        with pytest.raises(ValueError, match="only PDFs and TIFFs"):
            split_scan(path, [PartFile((0,), tmp_path / "p.jpg")])
