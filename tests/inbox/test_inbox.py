"""The scanner inbox end to end, on each database: real scans routed, split and filed."""

from __future__ import annotations

import base64
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from atoz_watcher.db.models import IMG_TYPE_DOCUMENT, IMG_TYPE_RADIOGRAPH
from atoz_watcher.imaging.coversheet import CoverSheet
from atoz_watcher.inbox import (
    Duplicate,
    InboxError,
    OutcomeKind,
    Reason,
    Routed,
    Rule,
    Skipped,
    Unmatched,
)
from atoz_watcher.storage import InDatabase
from tests.inbox.conftest import Desk, make_desk, orphans
from tests.support import scans
from tests.support.images import write_dicom

BATCH_CASES = [
    pytest.param("pdf", 200, scans.Degradation(rotate=90), id="pdf-200-rot90"),
    pytest.param(
        "tiff",
        300,
        scans.Degradation(rotate=180, skew=1.0, grey=True, jpeg_quality=40, noise=8.0),
        id="tiff-300-rot180-skew-grey-jpeg-noise",
    ),
    pytest.param("pdf", 300, scans.Degradation(skew=-2.0, grey=True), id="pdf-300-skew-grey"),
    pytest.param(
        "tiff", 200, scans.Degradation(jpeg_quality=30, noise=12.0), id="tiff-200-jpeg-noise"
    ),
]


def _sheet(pat_num: int, category: int | str | None = None) -> scans.Cover:
    return scans.Cover(CoverSheet(pat_num, "Test Patient", date(1980, 1, 2), category=category))


CLEAN = scans.Degradation()


def _write(items, path: Path, *, dpi: int = 150, how=CLEAN) -> Path:
    pages = scans.batch_pages(items, dpi=dpi, how=how)
    if path.suffix == ".pdf":
        return scans.write_pdf(pages, path, dpi=dpi)
    return scans.write_tiff(pages, path, dpi=dpi)


def _single_page(desk: Desk, name: str, number: int = 1) -> Path:
    return _write([number], desk.folder / name)


@pytest.mark.parametrize(("kind", "dpi", "how"), BATCH_CASES)
def test_a_three_patient_twelve_page_batch_splits_into_three_documents(desk, kind, dpi, how):
    anna, ben, clara = desk.patients
    items = [
        _sheet(anna), 1, 2, 3,
        _sheet(ben, "X-Rays"), 4, 5, 6, 7,
        _sheet(clara, desk.categories["Forms"]), 8, 9,
    ]  # fmt: skip
    assert len(items) == 12
    source = _write(items, desk.folder / f"scan0001.{kind}", dpi=dpi, how=how)

    outcome = desk.inbox().process(source)

    assert isinstance(outcome, Routed)
    assert outcome.rule is Rule.COVER_SHEET
    assert outcome.parts == 3
    assert desk.pages_of(anna) == [[1, 2, 3]]
    assert desk.pages_of(ben) == [[4, 5, 6, 7]]
    assert desk.pages_of(clara) == [[8, 9]]
    rows = {row["PatNum"]: row for row in desk.world.documents()}
    assert rows[anna]["DocCategory"] == desk.categories["Documents"]  # the first visible
    assert rows[ben]["DocCategory"] == desk.categories["X-Rays"]
    assert rows[clara]["DocCategory"] == desk.categories["Forms"]
    for row in rows.values():
        assert row["Description"] == f"scan0001.{kind}"
        assert row["ImgType"] == IMG_TYPE_DOCUMENT
        assert row["FileName"].endswith(f".{kind}")
        assert row["FileName"].startswith(("AveryAnna", "BrookBen", "ColeClara"))
    assert desk.in_("_Done") == [f"scan0001.{kind}", f"scan0001.{kind}.done.json"]
    assert desk.in_("_Work") == []
    assert not source.exists()
    assert (OutcomeKind.SPLIT, "cover-sheet") in desk.outcomes
    # Each part's thumbnail job is handed on, as Upload's is.
    assert sorted(job.doc_num for job in desk.thumbnails) == sorted(outcome.doc_nums)
    assert orphans(desk.world) == []
    # Each patient's folder was made and adopted into patient.ImageFolder.
    assert desk.world.image_folder(anna) == f"AveryAnna{anna}"


def test_pages_before_the_first_cover_sheet_go_unmatched_as_their_own_part(desk):
    anna, ben, _ = desk.patients
    source = _write([1, 2, _sheet(anna), 3, _sheet(ben), 4], desk.folder / "batch.pdf")

    outcome = desk.inbox().process(source)

    assert isinstance(outcome, Routed)
    assert outcome.unmatched == (Reason.BEFORE_FIRST_COVER,)
    assert desk.pages_of(anna) == [[3]]
    assert desk.pages_of(ben) == [[4]]
    (waiting,) = desk.inbox().unmatched()
    assert waiting.path.name == "batch (pages 1-2).pdf"
    assert waiting.reason is Reason.BEFORE_FIRST_COVER
    assert waiting.pages == (1, 2)
    assert waiting.original == "batch.pdf"
    assert scans.page_numbers(waiting.path) == [1, 2]


def test_pages_before_the_first_cover_sheet_follow_the_names_token(desk):
    anna, ben, clara = desk.patients
    source = _write([1, _sheet(ben), 2], desk.folder / f"PAT{clara} batch.pdf")

    outcome = desk.inbox().process(source)

    assert isinstance(outcome, Routed)
    assert desk.pages_of(clara) == [[1]]
    assert desk.pages_of(ben) == [[2]]
    assert desk.pages_of(anna) == []


@pytest.mark.parametrize(
    "first_page",
    [
        pytest.param(lambda: scans.foreign_qr_page("https://example.com/x", dpi=150), id="url"),
        pytest.param(lambda: scans.foreign_qr_page("ATZ1:1:AAAAAAAA", dpi=150), id="bad-check"),
        pytest.param(
            # A stripe down the page cuts through the QR code and the Code 128 alike.
            lambda: scans.paint_over(
                scans.cover_page(CoverSheet(1, "Test Patient"), dpi=150), (0.3, 0.0, 0.45, 1.0)
            ),
            id="damaged",
        ),
    ],
)
def test_a_foreign_or_damaged_code_is_never_routed(desk, first_page):
    pages = [first_page(), scans.content_page(1, dpi=150)]
    source = scans.write_pdf(pages, desk.folder / "scan0002.pdf", dpi=150)

    outcome = desk.inbox().process(source)

    assert isinstance(outcome, Unmatched)
    assert outcome.reason is Reason.NO_ROUTE
    assert desk.world.documents() == []
    assert desk.in_("_Unmatched") == ["scan0002.pdf", "scan0002.pdf.reason.json"]


def test_a_single_image_that_is_a_cover_sheet_is_refused_as_empty(desk):
    page = scans.cover_page(CoverSheet(desk.patients[0], "Test Patient"), dpi=150)
    source = desk.folder / "cover.png"
    page.save(source)

    outcome = desk.inbox().process(source)

    assert isinstance(outcome, Unmatched)
    assert outcome.reason is Reason.EMPTY_COVER_SHEET
    assert desk.world.documents() == []


def test_a_token_in_the_name_routes_with_the_folders_default_category(desk):
    anna = desk.patients[0]
    source = _single_page(desk, f"PAT{anna}_consent.pdf")

    outcome = desk.inbox(category="Forms").process(source)

    assert isinstance(outcome, Routed)
    assert outcome.rule is Rule.TOKEN
    (row,) = desk.world.documents(anna)
    assert row["DocCategory"] == desk.categories["Forms"]
    assert row["Description"] == f"PAT{anna}_consent.pdf"
    assert desk.pages_of(anna) == [[1]]
    assert (OutcomeKind.ROUTED, "token") in desk.outcomes


def test_the_prefix_chooses_the_category_and_is_cut_from_the_description(desk):
    anna, ben, _ = desk.patients
    xrays = desk.categories["X-Rays"]
    first = _single_page(desk, f"_{xrays}_pat-{anna} consent.pdf", 1)
    hidden = _single_page(desk, f"_{desk.categories['Old']}_PatNum{ben}.pdf", 2)
    unknown = _single_page(desk, f"_999999_PAT{ben}.pdf", 3)

    inbox = desk.inbox(category=desk.categories["Forms"])
    for source in (first, hidden, unknown):
        assert isinstance(inbox.process(source), Routed)

    (row,) = desk.world.documents(anna)
    assert row["DocCategory"] == xrays
    assert row["Description"] == f"pat-{anna} consent.pdf"
    categories = [row["DocCategory"] for row in desk.world.documents(ben)]
    # A hidden image category is taken from a prefix (as in the patient folders); a number
    # that is no image category selects nothing, and the folder's default applies.
    assert categories == [desk.categories["Old"], desk.categories["Forms"]]


def test_a_date_or_a_counter_in_the_name_never_routes(desk):
    for name in ("2026-12-05_scan.pdf", "scan0018.pdf", "IMG_0001.pdf"):
        outcome = desk.inbox().process(_single_page(desk, name))
        assert isinstance(outcome, Unmatched)
        assert outcome.reason is Reason.NO_ROUTE
    assert desk.world.documents() == []


def test_an_unknown_category_is_unmatched_with_its_reason(desk):
    source = _write([_sheet(desk.patients[0], "No Such"), 1], desk.folder / "scan.pdf")

    outcome = desk.inbox().process(source)

    assert isinstance(outcome, Unmatched)
    assert outcome.reason is Reason.UNKNOWN_CATEGORY
    assert desk.world.documents() == []


def _sidecar(desk: Desk, name: str) -> dict:
    return json.loads((desk.folder / "_Unmatched" / f"{name}.reason.json").read_text())


def test_unknown_and_deleted_patients_are_unmatched_with_their_reason(desk):
    anna, ben, _ = desk.patients
    desk.delete_patient(ben)
    unknown = _single_page(desk, "PAT999999.pdf")
    deleted = _single_page(desk, f"PAT{ben}.pdf", 2)

    inbox = desk.inbox()
    first, second = inbox.process(unknown), inbox.process(deleted)

    assert isinstance(first, Unmatched)
    assert first.reason is Reason.UNKNOWN_PATIENT
    assert isinstance(second, Unmatched)
    assert second.reason is Reason.DELETED_PATIENT
    assert desk.world.documents() == []
    assert _sidecar(desk, "PAT999999.pdf")["reason"] == "unknown-patient"
    assert _sidecar(desk, f"PAT{ben}.pdf")["reason"] == "deleted-patient"
    listed = {f.path.name: f.reason for f in inbox.unmatched()}
    assert listed == {
        "PAT999999.pdf": Reason.UNKNOWN_PATIENT,
        f"PAT{ben}.pdf": Reason.DELETED_PATIENT,
    }
    assert (OutcomeKind.UNMATCHED, "deleted-patient") in desk.outcomes
    del anna


def test_a_batch_part_for_a_deleted_patient_is_unmatched_the_rest_filed(desk):
    anna, ben, _ = desk.patients
    desk.delete_patient(ben)
    source = _write([_sheet(anna), 1, _sheet(ben), 2, 3], desk.folder / "batch.tif")

    outcome = desk.inbox().process(source)

    assert isinstance(outcome, Routed)
    assert outcome.unmatched == (Reason.DELETED_PATIENT,)
    assert desk.pages_of(anna) == [[1]]
    assert desk.world.documents(ben) == []
    (waiting,) = desk.inbox().unmatched()
    assert waiting.reason is Reason.DELETED_PATIENT
    assert scans.page_numbers(waiting.path) == [2, 3]


def test_assign_files_an_unmatched_file(desk):
    anna, ben, _ = desk.patients
    inbox = desk.inbox()
    outcome = inbox.process(_single_page(desk, "scan0042.pdf", 42))
    assert isinstance(outcome, Unmatched)
    (waiting,) = inbox.unmatched()

    with pytest.raises(InboxError, match="unknown-patient"):
        inbox.assign(waiting.path, 999999)
    desk.delete_patient(ben)
    with pytest.raises(InboxError, match="deleted-patient"):
        inbox.assign(waiting.path, ben)
    with pytest.raises(InboxError, match="unknown-category"):
        inbox.assign(waiting.path, anna, "No Such")
    assert waiting.path.exists()

    assigned = inbox.assign(waiting.path, anna, "x-rays")

    assert isinstance(assigned, Routed)
    assert assigned.rule is Rule.ASSIGNED
    (row,) = desk.world.documents(anna)
    assert row["DocCategory"] == desk.categories["X-Rays"]
    assert row["Description"] == "scan0042.pdf"
    assert desk.pages_of(anna) == [[42]]
    assert inbox.unmatched() == []
    assert desk.in_("_Unmatched") == []


def test_a_resent_scan_is_a_duplicate_until_keep_days_pass(desk):
    anna = desk.patients[0]
    first = _single_page(desk, f"PAT{anna}.pdf")
    content = first.read_bytes()
    inbox = desk.inbox()
    assert isinstance(inbox.process(first), Routed)

    resent = desk.folder / "resent.pdf"
    resent.write_bytes(content)
    outcome = inbox.process(resent)

    assert isinstance(outcome, Duplicate)
    assert len(desk.world.documents(anna)) == 1
    assert "resent.pdf" in desk.in_("_Duplicates")
    assert (OutcomeKind.DUPLICATE, "") in desk.outcomes

    # keep_days later the original is swept away, and the same content is filed again.
    desk.now += timedelta(days=31)
    assert inbox.sweep(desk.now) == 1
    assert desk.in_("_Done") == []
    again = desk.folder / f"PAT{anna} again.pdf"
    again.write_bytes(content)
    assert isinstance(inbox.process(again), Routed)
    assert len(desk.world.documents(anna)) == 2


def test_sweep_keeps_what_is_younger_than_keep_days(desk):
    inbox = desk.inbox()
    inbox.process(_single_page(desk, f"PAT{desk.patients[0]}.pdf"))
    assert inbox.sweep(desk.now + timedelta(days=29)) == 0
    assert len(desk.in_("_Done")) == 2


def test_dicom_patient_id_routes_to_a_patnum(desk):
    anna = desk.patients[0]
    source = write_dicom(
        desk.folder / "IMG0001", PatientID=str(anna), WindowCenter=2000, WindowWidth=1000
    )

    outcome = desk.inbox(category="X-Rays").process(source)

    assert isinstance(outcome, Routed)
    assert outcome.rule is Rule.DICOM
    (row,) = desk.world.documents(anna)
    assert row["ImgType"] == IMG_TYPE_RADIOGRAPH
    assert row["PrintHeading"] == 1
    assert (row["WindowingMin"], row["WindowingMax"]) == (1500, 2500)
    assert row["FileName"].endswith(".dcm")
    assert row["DocCategory"] == desk.categories["X-Rays"]
    assert desk.stored_path(row).read_bytes() == (desk.folder / "_Done" / "IMG0001").read_bytes()


def test_dicom_patient_id_routes_to_a_chart_number(desk):
    anna, ben, _ = desk.patients
    with desk.world.engine.begin() as conn:
        conn.execute(text("ALTER TABLE patient ADD ChartNumber varchar(20) NOT NULL DEFAULT ''"))
        conn.execute(text("UPDATE patient SET ChartNumber = 'A-17' WHERE PatNum = :p"), {"p": ben})
    by_chart = write_dicom(desk.folder / "chart.dcm", PatientID="A-17")
    unknown = write_dicom(desk.folder / "other.dcm", PatientID="Z-99")
    as_patnum = write_dicom(desk.folder / "patnum.dcm", PatientID=str(anna))

    inbox = desk.inbox(dicom_match="chart")
    routed, missing, not_a_chart = (inbox.process(p) for p in (by_chart, unknown, as_patnum))

    assert isinstance(routed, Routed)
    assert len(desk.world.documents(ben)) == 1
    assert isinstance(missing, Unmatched)
    assert missing.reason is Reason.UNKNOWN_CHART
    assert isinstance(not_a_chart, Unmatched)  # a PatNum is no ChartNumber in chart mode
    assert desk.world.documents(anna) == []


def test_a_dicom_id_that_is_no_patnum_is_unmatched(desk):
    source = write_dicom(desk.folder / "x.dcm", PatientID="ABC")

    outcome = desk.inbox().process(source)

    assert isinstance(outcome, Unmatched)
    assert outcome.reason is Reason.BAD_DICOM_ID


def test_switched_off_rules_do_not_route(desk):
    anna = desk.patients[0]
    token = _single_page(desk, f"PAT{anna}.pdf")
    dicom = write_dicom(desk.folder / "x.dcm", PatientID=str(anna))
    batch = _write([_sheet(anna), 5], desk.folder / "batch.pdf")

    inbox = desk.inbox(tokens=False, dicom=False, cover_sheets=False)
    outcomes = [inbox.process(p) for p in (token, dicom, batch)]

    assert all(isinstance(o, Unmatched) for o in outcomes)
    assert desk.world.documents() == []


def test_catch_up_takes_every_waiting_file_but_not_the_inboxs_own_folders(desk):
    anna, ben, _ = desk.patients
    _single_page(desk, f"PAT{anna}.pdf", 1)
    (desk.folder / "sub").mkdir()
    _write([2], desk.folder / "sub" / f"PAT{ben}.pdf")
    (desk.folder / "_Staff").mkdir()
    kept = _write([3], desk.folder / "_Staff" / f"PAT{ben} x.pdf")
    (desk.folder / ".hidden.pdf").write_bytes(b"%PDF-")

    later = _single_page(desk, f"PAT{anna} later.pdf", 9)
    outcomes = desk.inbox().catch_up(ready=lambda path: path != later)

    assert later.exists()  # not ready yet: left for later
    assert sorted(type(o).__name__ for o in outcomes) == ["Routed", "Routed"]
    assert desk.pages_of(anna) == [[1]]
    assert desk.pages_of(ben) == [[2]]
    assert kept.exists()
    assert (desk.folder / ".hidden.pdf").exists()


def test_a_damaged_pdf_is_unmatched_and_kept(desk):
    source = desk.folder / f"PAT{desk.patients[0]}.pdf"
    source.write_bytes(b"%PDF-1.7\n this is no PDF at all")

    outcome = desk.inbox().process(source)

    assert isinstance(outcome, Unmatched)
    assert outcome.reason is Reason.UNREADABLE_SCAN
    assert (desk.folder / "_Unmatched" / source.name).read_bytes().startswith(b"%PDF-1.7")


def test_an_inbox_inside_the_atoz_root(world):
    desk = make_desk(world, world.root / "_Inbox")
    anna = desk.patients[0]
    source = _single_page(desk, f"PAT{anna}.pdf")

    assert isinstance(desk.inbox().process(source), Routed)
    assert desk.pages_of(anna) == [[1]]


def test_a_link_in_the_inbox_is_refused(desk, tmp_path):
    outside = _write([1], tmp_path / "elsewhere.pdf")
    link = desk.folder / f"PAT{desk.patients[0]}.pdf"
    link.symlink_to(outside)

    outcome = desk.inbox().process(link)

    assert isinstance(outcome, Skipped)
    assert link.is_symlink()
    assert desk.world.documents() == []


def test_in_database_storage_keeps_the_part_in_the_row(desk):
    anna = desk.patients[0]
    source = _single_page(desk, f"PAT{anna}.tif", 7)
    content = source.read_bytes()

    outcome = desk.inbox(storage=InDatabase()).process(source)

    assert isinstance(outcome, Routed)
    (row,) = desk.world.documents(anna)
    assert base64.b64decode(row["RawBase64"]) == content
    assert list(desk.world.root.glob("?/*/*")) == []


def test_a_name_open_dental_skips_is_left_alone(desk):
    source = desk.folder / "Thumbs.db"
    source.write_bytes(b"x")

    outcome = desk.inbox().process(source)

    assert isinstance(outcome, Skipped)
    assert source.exists()


def test_a_patient_deleted_after_routing_gets_nothing(desk):
    anna, ben, _ = desk.patients
    source = _write([_sheet(anna), 1, _sheet(ben), 2], desk.folder / "batch.pdf")

    def delete_ben(step: str) -> None:
        if step == "split":
            desk.delete_patient(ben)

    outcome = desk.inbox(on_step=delete_ben).process(source)

    assert isinstance(outcome, Routed)
    assert outcome.unmatched == (Reason.DELETED_PATIENT,)
    assert desk.pages_of(anna) == [[1]]
    assert desk.world.documents(ben) == []


def test_a_file_no_decoder_can_read_is_not_left_in_work(desk):
    source = desk.folder / f"PAT{desk.patients[0]}.png"
    source.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG header and nothing else

    outcome = desk.inbox().process(source)

    # Not an image after all: the token routes it as the file it is (Open Dental would too).
    assert isinstance(outcome, Routed | Unmatched)
    assert desk.in_("_Work") == []
