"""Today over plain HTTP, on SQLite and MariaDB: the newest documents first with how each came,
and the rows feed ui.js polls (only the rows newer than it has)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from atoz_watcher.db.activity import Arrival, Way
from tests.support.ui import STAFF, VIEWER, UiSite, serving_ui
from tests.support.worlds import World

pytestmark = pytest.mark.timeout(120)

ROW = re.compile(r'<tr data-docnum="(\d+)">(.*?)</tr>', re.DOTALL)


def cell(row_html: str, name: str) -> str:
    found = re.search(rf'<td class="{name}"[^>]*>(.*?)</td>', row_html, re.DOTALL)
    assert found is not None, f"no td.{name} in {row_html}"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def rows(html: str) -> list[tuple[int, str]]:
    return [(int(m.group(1)), m.group(2)) for m in ROW.finditer(html)]


@pytest.fixture
def site(bare_world: World) -> Iterator[UiSite]:
    with serving_ui(bare_world) as served:
        yield served


def test_today_lists_documents_newest_first_with_how_they_came(
    site: UiSite, bare_world: World
) -> None:
    xrays = bare_world.add_category("X-Rays", order=1)
    smith = bare_world.add_patient("Smith", "John", "SmithJohn1")
    jones = bare_world.add_patient("Jones", "Ann", "JonesAnn2")
    made_by_od = bare_world.add_document(smith, "old.jpg", xrays)
    from_folder = bare_world.add_document(jones, "pano.jpg", xrays)
    from_inbox = bare_world.add_document(smith, "scan.pdf", xrays)
    from_api = bare_world.add_document(jones, "upload.png", xrays)
    site.parts.activity.arrived(
        [
            Arrival(from_folder, Way.FOLDER),
            Arrival(from_inbox, Way.INBOX, "cover-sheet"),
            Arrival(from_api, Way.API, "Upload"),
        ]
    )

    with site.logged_in(VIEWER) as client:
        page = client.get("/ui/")

    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    shown = rows(page.text)
    assert [doc for doc, _ in shown] == [from_api, from_inbox, from_folder, made_by_od]
    hows = {doc: cell(html, "how") for doc, html in shown}
    assert hows == {
        from_api: "API: Upload",
        from_inbox: "Inbox: cover sheet",
        from_folder: "Patient folder",
        made_by_od: "Open Dental",
    }
    first = shown[0][1]
    assert cell(first, "patient") == "Jones, Ann"
    assert f'href="/ui/patients/{jones}"' in first
    assert cell(first, "category") == "X-Rays"
    assert cell(first, "file") == "upload.png"
    assert f'src="/ui/documents/{from_api}/thumbnail"' in first
    assert f'data-latest="{from_api}"' in page.text
    assert '<script src="/ui/static/ui.js"' in page.text


def test_the_rows_feed_returns_only_newer_rows(site: UiSite, bare_world: World) -> None:
    photos = bare_world.add_category("Photos", order=1)
    pat = bare_world.add_patient("Brown", "Amy", "BrownAmy1")
    first = bare_world.add_document(pat, "a.jpg", photos)
    second = bare_world.add_document(pat, "b.jpg", photos)
    third = bare_world.add_document(pat, "c.jpg", photos)

    with site.logged_in(STAFF) as client:
        newer = client.get("/ui/today/rows", params={"after": first})
        none = client.get("/ui/today/rows", params={"after": third})
        bad = client.get("/ui/today/rows", params={"after": "x"})

    assert newer.status_code == 200
    assert [doc for doc, _ in rows(newer.text)] == [third, second]
    assert "<html" not in newer.text  # a fragment of rows, not a page
    assert none.status_code == 200
    assert none.text.strip() == ""
    assert bad.status_code == 400


def test_today_and_its_feed_need_a_login(site: UiSite) -> None:
    with site.client() as anonymous:
        page = anonymous.get("/ui/")
        feed = anonymous.get("/ui/today/rows?after=0")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/ui/login")
    assert feed.status_code == 303
