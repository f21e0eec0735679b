"""The Inbox pages over plain HTTP, on SQLite and MariaDB: unmatched files and duplicates with
their previews and reasons; a file's page finds the patient; Assign files it, Discard moves it
to _Trash/; a viewer moves nothing; a bad ``file`` is a 400 page and nothing moves."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from atoz_watcher.config.sections import InboxFolder, InboxSettings
from atoz_watcher.inbox import Duplicate, Reason, Routed, Unmatched
from atoz_watcher.rules.layout import patient_dir
from tests.support import scans
from tests.support.ui import STAFF, VIEWER, UiSite, csrf_of, serving_ui
from tests.support.worlds import World

pytestmark = pytest.mark.timeout(180)

NO_ROUTE_WORDS = "no cover sheet, no PatNum in the name, no DICOM patient"


@dataclass
class Desk:
    site: UiSite
    world: World
    inbox: Path
    smith: int
    category: int

    def unmatched(self, name: str = "letter.pdf") -> Path:
        """A scan no rule routes, dropped and processed: its path in _Unmatched/."""
        scans.write_pdf([scans.content_page(1, dpi=60)], self.inbox / name, dpi=60)
        inbox = self.site.parts.inbox
        assert inbox is not None
        outcome = inbox.process(self.inbox / name)
        assert isinstance(outcome, Unmatched), outcome
        assert outcome.reason is Reason.NO_ROUTE
        return self.inbox / "_Unmatched" / outcome.name

    def documents(self) -> list[dict[str, object]]:
        return self.world.documents()


@pytest.fixture
def desk(bare_world: World, tmp_path: Path) -> Iterator[Desk]:
    folder = tmp_path / "Scans"
    folder.mkdir()
    category = bare_world.add_category("Letters", order=1)
    smith = bare_world.add_patient("Smith", "John", "SmithJohn1")
    bare_world.folder("SmithJohn1")
    settings = InboxSettings(folders=(InboxFolder(path=folder),))
    with serving_ui(bare_world, inbox=settings) as site:
        yield Desk(site, bare_world, folder, smith, category)


def table_rows(html: str, table: str) -> dict[str, str]:
    found = re.search(rf'<table id="{table}".*?</table>', html, re.DOTALL)
    assert found is not None, f"no table#{table}"
    return dict(re.findall(r'<tr data-file="([^"]+)">(.*?)</tr>', found.group(0), re.DOTALL))


def cell(row: str, name: str) -> str:
    found = re.search(rf'<td class="{name}"[^>]*>(.*?)</td>', row, re.DOTALL)
    assert found is not None
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_the_inbox_lists_an_unmatched_file_with_its_reason_and_preview(desk: Desk) -> None:
    desk.unmatched("letter.pdf")

    with desk.site.logged_in(VIEWER) as client:
        page = client.get("/ui/inbox")
        preview = client.get("/ui/inbox/preview", params={"file": "0/letter.pdf"})
        large = client.get("/ui/inbox/preview", params={"file": "0/letter.pdf", "size": "large"})

    assert page.status_code == 200
    rows = table_rows(page.text, "unmatched")
    assert list(rows) == ["0/letter.pdf"]
    row = rows["0/letter.pdf"]
    assert cell(row, "name") == "letter.pdf"
    assert cell(row, "reason") == NO_ROUTE_WORDS
    assert cell(row, "came")  # a time
    assert 'class="open" href="/ui/inbox/file?file=0/letter.pdf"' in row
    assert 'src="/ui/inbox/preview?file=0/letter.pdf"' in row
    assert preview.status_code == 200
    assert preview.headers["content-type"] == "image/jpeg"
    with (
        Image.open(io.BytesIO(preview.content)) as small,
        Image.open(io.BytesIO(large.content)) as big,
    ):
        assert small.size == (120, 160)
        assert big.size == (600, 800)
        assert small.convert("L").getextrema()[0] < 128  # the page's text shows


def test_assign_files_it_to_the_patient(desk: Desk) -> None:
    desk.unmatched("letter.pdf")
    deleted = desk.world.add_patient("Smith", "Gone", "SmithGone2")
    desk.world.delete_patient(deleted)

    with desk.site.logged_in(STAFF) as client:
        page = client.get("/ui/inbox/file", params={"file": "0/letter.pdf", "q": "Smith"})
        assert page.status_code == 200
        assert f'id="pat-{desk.smith}"' in page.text
        assert f'id="pat-{deleted}"' not in page.text  # shown as deleted, never offered
        assert f'<option value="{desk.category}">Letters</option>' in page.text
        answer = client.post(
            "/ui/inbox/assign",
            data={
                "csrf": csrf_of(page.text),
                "file": "0/letter.pdf",
                "pat_num": str(desk.smith),
                "category": str(desk.category),
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/inbox?done=filed")
        after = client.get(answer.headers["location"])

    rows = desk.documents()
    assert len(rows) == 1
    assert rows[0]["PatNum"] == desk.smith
    assert rows[0]["DocCategory"] == desk.category
    stored = patient_dir(desk.world.root, "SmithJohn1") / str(rows[0]["FileName"])
    assert stored.is_file()
    assert not (desk.inbox / "_Unmatched" / "letter.pdf").exists()
    assert '<p role="status">Filed letter.pdf to Smith, John.</p>' in after.text
    assert 'id="unmatched-empty"' in after.text  # nothing left waiting


def test_discard_moves_it_to_the_trash(desk: Desk) -> None:
    desk.unmatched("junk.pdf")

    with desk.site.logged_in(STAFF) as client:
        page = client.get("/ui/inbox/file", params={"file": "0/junk.pdf"})
        answer = client.post(
            "/ui/inbox/discard", data={"csrf": csrf_of(page.text), "file": "0/junk.pdf"}
        )
        assert answer.status_code == 303
        after = client.get(answer.headers["location"])

    assert not (desk.inbox / "_Unmatched" / "junk.pdf").exists()
    assert (desk.inbox / "_Trash" / "junk.pdf").is_file()
    assert desk.documents() == []
    assert '<p role="status">Moved junk.pdf to the trash.</p>' in after.text


def test_a_duplicate_is_listed_and_can_be_discarded(desk: Desk) -> None:
    inbox = desk.site.parts.inbox
    assert inbox is not None
    first = scans.write_pdf(
        [scans.content_page(1, dpi=60)], desk.inbox / f"PAT{desk.smith}.pdf", dpi=60
    )
    content = first.read_bytes()
    assert isinstance(inbox.process(first), Routed)  # filed by the PatNum in its name
    (desk.inbox / "again.pdf").write_bytes(content)
    again = inbox.process(desk.inbox / "again.pdf")
    assert isinstance(again, Duplicate), again

    with desk.site.logged_in(STAFF) as client:
        page = client.get("/ui/inbox")
        rows = table_rows(page.text, "duplicates")
        assert list(rows) == [f"0/{again.name}"]
        assert "filed from this inbox already" in cell(rows[f"0/{again.name}"], "reason")
        file_page = client.get("/ui/inbox/file", params={"file": f"0/{again.name}"})
        assert 'id="discard"' in file_page.text
        answer = client.post(
            "/ui/inbox/discard", data={"csrf": csrf_of(page.text), "file": f"0/{again.name}"}
        )

    assert answer.status_code == 303
    assert not (desk.inbox / "_Duplicates" / again.name).exists()
    assert len(desk.documents()) == 1


def test_a_viewers_assign_is_403_and_moves_nothing(desk: Desk) -> None:
    desk.unmatched("letter.pdf")

    with desk.site.logged_in(VIEWER) as client:
        page = client.get("/ui/inbox/file", params={"file": "0/letter.pdf", "q": "Smith"})
        token = csrf_of(page.text)
        assign = client.post(
            "/ui/inbox/assign",
            data={"csrf": token, "file": "0/letter.pdf", "pat_num": str(desk.smith)},
        )
        discard = client.post("/ui/inbox/discard", data={"csrf": token, "file": "0/letter.pdf"})

    for answer in (assign, discard):
        assert answer.status_code == 403
        assert "Your account may look but not move files." in answer.text
    assert (desk.inbox / "_Unmatched" / "letter.pdf").is_file()
    assert desk.documents() == []


def test_an_assign_to_a_deleted_patient_is_a_400_page(desk: Desk) -> None:
    desk.unmatched("letter.pdf")
    deleted = desk.world.add_patient("Smith", "Gone", "SmithGone2")
    desk.world.delete_patient(deleted)

    with desk.site.logged_in(STAFF) as client:
        page = client.get("/ui/inbox/file", params={"file": "0/letter.pdf"})
        answer = client.post(
            "/ui/inbox/assign",
            data={"csrf": csrf_of(page.text), "file": "0/letter.pdf", "pat_num": str(deleted)},
        )
        nobody = client.post(
            "/ui/inbox/assign",
            data={"csrf": csrf_of(page.text), "file": "0/letter.pdf", "pat_num": "999999"},
        )

    assert answer.status_code == 400
    assert 'role="alert"' in answer.text
    assert "deleted" in answer.text
    assert nobody.status_code == 400
    assert (desk.inbox / "_Unmatched" / "letter.pdf").is_file()
    assert desk.documents() == []


def test_a_bad_file_value_is_a_400_page_and_nothing_moves(desk: Desk, tmp_path: Path) -> None:
    desk.unmatched("letter.pdf")
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(b"%PDF-1.4 not an inbox file")
    (desk.inbox / "_Unmatched" / "link.pdf").symlink_to(outside)
    bad_values = [
        "../letter.pdf",
        "0/../letter.pdf",
        "0/../../outside.pdf",
        "0/_Unmatched/letter.pdf",
        "0/link.pdf",
        "0/missing.pdf",
        "0/letter.pdf.reason.json",
        "7/letter.pdf",
        "letter.pdf",
        "",
    ]

    with desk.site.logged_in(STAFF) as client:
        token = csrf_of(client.get("/ui/inbox/file", params={"file": "0/letter.pdf"}).text)
        for value in bad_values:
            for answer in (
                client.get("/ui/inbox/file", params={"file": value}),
                client.get("/ui/inbox/preview", params={"file": value}),
                client.post(
                    "/ui/inbox/assign",
                    data={"csrf": token, "file": value, "pat_num": str(desk.smith)},
                ),
                client.post("/ui/inbox/discard", data={"csrf": token, "file": value}),
            ):
                assert answer.status_code == 400, (value, answer.request.url)
                assert 'role="alert"' in answer.text
                assert b"not an inbox file" not in answer.content

    assert (desk.inbox / "_Unmatched" / "letter.pdf").is_file()
    assert (desk.inbox / "_Unmatched" / "link.pdf").is_symlink()
    assert outside.is_file()
    assert desk.documents() == []


def test_without_an_inbox_the_page_says_so(bare_world: World) -> None:
    with serving_ui(bare_world) as site, site.logged_in(VIEWER) as client:
        page = client.get("/ui/inbox")
        file = client.get("/ui/inbox/file", params={"file": "0/x.pdf"})
    assert page.status_code == 200
    assert "No scanner inbox is set up" in page.text
    assert file.status_code == 400
