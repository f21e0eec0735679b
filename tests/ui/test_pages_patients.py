"""Patients over plain HTTP, on SQLite and MariaDB: finding one by name, PatNum, chart number
or birth date; a patient's documents by category, 200 to a page; the cover sheet, whose code
routes a scan to that patient and category."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from atoz_watcher.config.sections import InboxFolder, InboxSettings
from atoz_watcher.db.shape import TableShape
from atoz_watcher.imaging.codes import scan_codes
from atoz_watcher.imaging.pages import iter_pages
from atoz_watcher.inbox import Routed
from atoz_watcher.rules.cover import CoverCode
from tests.support import scans
from tests.support.practice import open_dental_patient_columns
from tests.support.ui import STAFF, VIEWER, UiSite, csrf_of, serving_ui
from tests.support.worlds import World

pytestmark = pytest.mark.timeout(180)


def _set(world: World, pat_num: int, **values: object) -> None:
    columns = ", ".join(f"{name} = :{name}" for name in values)
    with world.engine.begin() as conn:
        conn.execute(
            text(f"UPDATE patient SET {columns} WHERE PatNum = :p"), {**values, "p": pat_num}
        )


def found(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-patnum="(\d+)">', html)]


@pytest.fixture
def people(bare_world: World) -> dict[str, int]:
    with bare_world.engine.begin() as conn:
        open_dental_patient_columns(conn)
    made = {}
    for key, lname, fname, chart, born in (
        ("john", "Smith", "John", "A100", "1980-04-02"),
        ("joanna", "Smith", "Joanna", "C7", "1975-12-31"),
        ("waylon", "Smithers", "Waylon", "", "1980-04-02"),
        ("ann", "Jones", "Ann", "B200", "1990-01-05"),
    ):
        pat = bare_world.add_patient(lname, fname, f"{lname}{fname}")
        _set(bare_world, pat, ChartNumber=chart, Birthdate=born)
        made[key] = pat
    return made


@pytest.fixture
def site(bare_world: World, people: dict[str, int]) -> Iterator[UiSite]:
    del people
    with serving_ui(bare_world) as served:
        yield served


def test_find_a_patient_by_name_patnum_chart_number_or_birth_date(
    site: UiSite, people: dict[str, int]
) -> None:
    with site.logged_in(VIEWER) as client:
        by_name = client.get("/ui/patients", params={"q": "Smith"})
        by_both = client.get("/ui/patients", params={"q": "Smith, Jo"})
        by_patnum = client.get("/ui/patients", params={"q": f"#{people['ann']}"})
        by_chart = client.get("/ui/patients", params={"q": "B200"})
        by_birth = client.get("/ui/patients", params={"q": "1980-04-02"})
        by_us_birth = client.get("/ui/patients", params={"q": "04/02/1980"})
        nobody = client.get("/ui/patients", params={"q": "Nobody"})
        empty = client.get("/ui/patients")

    assert by_name.status_code == 200
    assert found(by_name.text) == [people["joanna"], people["john"], people["waylon"]]
    assert found(by_both.text) == [people["joanna"], people["john"]]
    assert found(by_patnum.text) == [people["ann"]]
    assert found(by_chart.text) == [people["ann"]]
    assert found(by_birth.text) == [people["john"], people["waylon"]]
    assert found(by_us_birth.text) == [people["john"], people["waylon"]]
    assert f'href="/ui/patients/{people["ann"]}"' in by_chart.text
    assert found(nobody.text) == []
    assert "No patient found" in nobody.text
    assert 'id="find-patient"' in empty.text
    assert found(empty.text) == []


def test_a_patients_page_groups_documents_by_category(
    site: UiSite, bare_world: World, people: dict[str, int]
) -> None:
    xrays = bare_world.add_category("X-Rays", order=1)
    photos = bare_world.add_category("Photos", order=2)
    john = people["john"]
    photo = bare_world.add_document(john, "face.jpg", photos)
    xray_old = bare_world.add_document(john, "bw1.jpg", xrays)
    xray_new = bare_world.add_document(john, "bw2.jpg", xrays)
    bare_world.add_document(people["ann"], "not-johns.jpg", xrays)

    with site.logged_in(VIEWER) as client:
        page = client.get(f"/ui/patients/{john}")
        missing = client.get("/ui/patients/999999")

    assert page.status_code == 200
    assert f"<h1>Smith, John (PatNum {john})</h1>" in page.text
    sections = re.findall(
        r'<section class="category" data-defnum="(\d+)".*?<h2[^>]*>(.*?)</h2>(.*?)</section>',
        page.text,
        re.DOTALL,
    )
    assert [(int(d), name) for d, name, _ in sections] == [(xrays, "X-Rays"), (photos, "Photos")]
    docs = [[int(n) for n in re.findall(r'data-docnum="(\d+)"', body)] for _, _, body in sections]
    assert docs == [[xray_new, xray_old], [photo]]
    assert f'href="/ui/documents/{photo}/file"' in page.text
    assert f'src="/ui/documents/{photo}/thumbnail"' in page.text
    assert missing.status_code == 404


def test_a_patients_documents_come_200_to_a_page(
    site: UiSite, bare_world: World, people: dict[str, int]
) -> None:
    photos = bare_world.add_category("Photos", order=1)
    ann = people["ann"]
    with bare_world.engine.begin() as conn:
        shape = TableShape.reflect(conn, "document")
        rows = [
            {"PatNum": ann, "FileName": f"p{i:03d}.jpg", "DocCategory": photos, "Note": ""}
            for i in range(201)
        ]
        conn.execute(shape.table.insert(), [shape.complete(row) for row in rows])

    with site.logged_in(VIEWER) as client:
        first = client.get(f"/ui/patients/{ann}")
        second = client.get(f"/ui/patients/{ann}", params={"page": 2})

    assert len(re.findall(r'<a class="document"', first.text)) == 200
    assert f'href="/ui/patients/{ann}?page=2"' in first.text
    assert len(re.findall(r'<a class="document"', second.text)) == 1
    assert "p000.jpg" in second.text  # the oldest, last


def test_the_cover_sheet_carries_the_patients_code(
    site: UiSite, bare_world: World, people: dict[str, int], tmp_path: Path
) -> None:
    xrays = bare_world.add_category("X-Rays", order=1)
    john = people["john"]

    with site.logged_in(VIEWER) as client:  # a viewer may print one: it moves nothing
        page = client.get(f"/ui/patients/{john}")
        assert 'id="cover-sheet"' in page.text
        sheet = client.post(
            f"/ui/patients/{john}/cover-sheet",
            data={"csrf": csrf_of(page.text), "category": str(xrays), "paper": "a4"},
        )
        no_category = client.post(
            f"/ui/patients/{john}/cover-sheet",
            data={"csrf": csrf_of(page.text), "category": "", "paper": "letter"},
        )

    assert sheet.status_code == 200
    assert sheet.headers["content-type"] == "application/pdf"
    assert sheet.headers["content-disposition"] == f'attachment; filename="cover-sheet-{john}.pdf"'
    printed = tmp_path / "sheet.pdf"
    printed.write_bytes(sheet.content)
    assert scan_codes(printed) == [frozenset({CoverCode(john, xrays)})]
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(no_category.content)
    assert scan_codes(plain) == [frozenset({CoverCode(john, None)})]


def test_a_cover_sheet_is_refused_for_a_deleted_patient_a_bad_category_or_no_token(
    site: UiSite, bare_world: World, people: dict[str, int]
) -> None:
    hidden = bare_world.add_category("Old", order=1, hidden=True)
    ann = people["ann"]
    with site.logged_in(STAFF) as client:
        page = client.get(f"/ui/patients/{ann}")
        token = csrf_of(page.text)
        bad_category = client.post(
            f"/ui/patients/{ann}/cover-sheet",
            data={"csrf": token, "category": str(hidden), "paper": "a4"},
        )
        bad_paper = client.post(
            f"/ui/patients/{ann}/cover-sheet", data={"csrf": token, "paper": "tabloid"}
        )
        no_token = client.post(f"/ui/patients/{ann}/cover-sheet", data={"paper": "a4"})
        _set(bare_world, ann, PatStatus=4)
        deleted = client.post(
            f"/ui/patients/{ann}/cover-sheet", data={"csrf": token, "paper": "a4"}
        )

    assert bad_category.status_code == 400
    assert "hidden" in bad_category.text
    assert bad_paper.status_code == 400
    assert no_token.status_code == 403
    assert deleted.status_code == 400
    assert "deleted" in deleted.text
    for refused in (bad_category, bad_paper, deleted):
        assert refused.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in refused.text


def test_a_scan_behind_the_printed_cover_sheet_is_filed_to_that_patient_and_category(
    bare_world: World, people: dict[str, int], tmp_path: Path
) -> None:
    xrays = bare_world.add_category("X-Rays", order=1)
    letters = bare_world.add_category("Letters", order=2)
    john = people["john"]
    bare_world.folder("SmithJohn")
    scanner = tmp_path / "Scans"
    scanner.mkdir()
    settings = InboxSettings(folders=(InboxFolder(path=scanner),))
    with serving_ui(bare_world, inbox=settings) as site, site.logged_in(STAFF) as client:
        page = client.get(f"/ui/patients/{john}")
        sheet = client.post(
            f"/ui/patients/{john}/cover-sheet",
            data={"csrf": csrf_of(page.text), "category": str(letters), "paper": "letter"},
        )
        printed = tmp_path / "cover.pdf"
        printed.write_bytes(sheet.content)
        # Printed and scanned: the sheet on top of a page of the patient's papers.
        (cover,) = iter_pages(printed, dpi=150)
        batch = scans.write_pdf(
            [cover, scans.content_page(1, dpi=150)], scanner / "batch.pdf", dpi=150
        )
        inbox = site.parts.inbox
        assert inbox is not None
        outcome = inbox.process(batch)

    assert isinstance(outcome, Routed), outcome
    (filed,) = bare_world.documents()
    assert filed["PatNum"] == john
    assert filed["DocCategory"] == letters != xrays
