"""GET /documents a page at a time (Limit, Offset), deleted patients, and reads that never wait
for the registration lock: a real server on loopback, on SQLite and MariaDB."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from atoz_watcher.db.lock import locked_connection
from atoz_watcher.db.rows import blank_document
from atoz_watcher.db.shape import TableShape
from tests.support.api import DOCUMENTS, SET_BY_URL, UPLOAD, api_settings, serving
from tests.support.clinics import Clinic, make_clinic
from tests.support.worlds import World, make_world

DOCS = 250
MOUNTS = 3
START = datetime(2020, 1, 1, 8, 0, 0)
LIMIT_INVALID = "Limit is invalid: it must be a whole number of 1 or more"
OFFSET_INVALID = (
    "Offset is invalid: it must be a whole number from 0 to 9223372036854775807 "
    "(0 is the first item)"
)
DELETED = "Patient is deleted; documents cannot be added to a deleted patient"


def _bulk(world: World, table: str, rows: list[dict[str, Any]]) -> None:
    with world.engine.begin() as conn:
        shape = TableShape.reflect(conn, table)
        conn.execute(shape.table.insert(), [shape.complete(row) for row in rows])


def _numbers(world: World, sql: str, pat: int) -> list[int]:
    with world.engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(text(sql), {"p": pat})]


def fill(world: World, clinic: Clinic) -> list[tuple[int, int]]:
    """DOCS documents and MOUNTS mounts for the clinic's patient, two documents on each
    mount; returns the list's order as (DocNum, MountNum), worked out here from the rows."""
    pat = clinic.pat
    # Dates out of DocNum order, and pairs sharing a date: only a total order pages cleanly.
    _bulk(
        world,
        "document",
        [
            blank_document(
                PatNum=pat,
                FileName=f"scan{n}.jpg",
                Description=f"Scan {n}",
                DocCategory=clinic.xrays,
                DateCreated=START + timedelta(days=(n * 37) % DOCS // 2),
            )
            for n in range(DOCS)
        ],
    )
    mounts: list[tuple[int, datetime]] = []
    for m in range(MOUNTS):
        when = START + timedelta(days=40 * m + 10)  # the date of documents too: mounts first
        mount = world._insert(
            "mount", {"PatNum": pat, "DocCategory": clinic.xrays, "DateCreated": when, "Note": ""}
        )
        mounts.append((mount, when))
    docs = _numbers(world, "SELECT DocNum FROM document WHERE PatNum = :p ORDER BY DocNum", pat)
    on_mount: dict[int, list[int]] = {}
    for index, (mount, _) in enumerate(mounts):
        by_order: dict[int, int] = {}
        for order in (1, 0):  # items made out of ItemOrder
            item = world._insert(
                "mountitem", {"MountNum": mount, "ItemOrder": order, "TextShowing": ""}
            )
            by_order[order] = docs[index * 50 + order]
            with world.engine.begin() as conn:
                conn.execute(
                    text("UPDATE document SET MountItemNum = :i WHERE DocNum = :d"),
                    {"i": item, "d": by_order[order]},
                )
        on_mount[mount] = [by_order[0], by_order[1]]
    members_of = {doc for docs_on in on_mount.values() for doc in docs_on}
    with world.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT DocNum, DateCreated FROM document WHERE PatNum = :p"), {"p": pat}
        )
        dates = {int(r[0]): r[1] for r in rows}
    top: list[tuple[tuple[str, int, int], list[tuple[int, int]]]] = [
        ((str(dates[d])[:19], 1, d), [(d, 0)]) for d in docs if d not in members_of
    ]
    for mount, when in mounts:
        group = [(0, mount)] + [(d, mount) for d in on_mount[mount]]
        top.append(((when.isoformat(sep=" "), 0, mount), group))
    top.sort(key=lambda pair: pair[0])
    return [entry for _, group in top for entry in group]


def listed(api: httpx.Client, pat: int, **params: Any) -> list[tuple[int, int]]:
    reply = api.get(DOCUMENTS, params={"PatNum": pat, **params})
    assert reply.status_code == 200, reply.text
    return [(e["DocNum"], e["MountNum"]) for e in reply.json()]


def test_pages_return_every_item_once_in_order(bare_world: World) -> None:
    world = bare_world
    clinic = make_clinic(world)
    expected = fill(world, clinic)
    assert len(expected) == DOCS + MOUNTS
    pat = clinic.pat

    with serving(api_settings(world), world) as api:  # max_limit 1000: one page holds all
        whole = listed(api, pat)
        by_limit = listed(api, pat, Limit=100)
        by_both = [listed(api, pat, Limit=100, Offset=o) for o in (0, 100, 200, 300)]
        past_the_end = listed(api, pat, Limit=100, Offset=DOCS + MOUNTS)
        shifted = listed(api, pat, Offset=7)
    with serving(api_settings(world, max_limit=100), world) as api:  # the cloud's pages
        by_offset = [listed(api, pat, Offset=o) for o in (0, 100, 200)]
        capped = listed(api, pat, Limit=5000)

    assert whole == expected
    assert by_limit == expected[:100]
    assert [len(p) for p in by_both] == [100, 100, 53, 0]
    assert [e for page in by_both for e in page] == expected
    assert past_the_end == []
    assert shifted == expected[7:]
    assert [e for page in by_offset for e in page] == expected
    assert [len(p) for p in by_offset] == [100, 100, 53]
    assert capped == expected[:100]


def pages(api: httpx.Client, pat: int, limit: int) -> Iterator[list[tuple[int, int]]]:
    """A client paging the documented way: next Offset = items so far, until a short page."""
    offset = 0
    while True:
        page = listed(api, pat, Limit=limit, Offset=offset)
        yield page
        if len(page) < limit:
            return
        offset += len(page)


@pytest.mark.parametrize("limit", [100, 23])  # 253 = 11 x 23: the last full page, then []
def test_a_client_paging_until_a_short_page_stops_with_everything(
    bare_world: World, limit: int
) -> None:
    clinic = make_clinic(bare_world)
    expected = fill(bare_world, clinic)
    with serving(api_settings(bare_world), bare_world) as api:
        got = []
        for count, page in enumerate(pages(api, clinic.pat, limit), start=1):
            assert count <= len(expected) // limit + 1, "the client never got a short page"
            got.append(page)
    assert [e for page in got for e in page] == expected
    assert len(got) == len(expected) // limit + 1


BAD_PAGES = {
    "Limit=0": LIMIT_INVALID,
    "Limit=-1": LIMIT_INVALID,
    "Limit=abc": LIMIT_INVALID,
    "Limit=": LIMIT_INVALID,
    "Limit=1.5": LIMIT_INVALID,
    "Limit=%2B5": LIMIT_INVALID,  # "+5"
    "Limit=%205": LIMIT_INVALID,  # " 5"
    "Offset=-1": OFFSET_INVALID,
    "Offset=x": OFFSET_INVALID,
    "Offset=": OFFSET_INVALID,
    "Offset=9223372036854775808": OFFSET_INVALID,
    "Limit=10&Offset=1e3": OFFSET_INVALID,
}


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    yield from make_world("sqlite", tmp_path)


def test_bad_limit_or_offset_is_a_400(sqlite_world: World) -> None:
    world = sqlite_world
    clinic = make_clinic(world)
    world.add_document(clinic.pat, "a.jpg", clinic.xrays)
    base = f"{DOCUMENTS}?PatNum={clinic.pat}"
    with serving(api_settings(world), world) as api:
        replies = {query: api.get(f"{base}&{query}") for query in BAD_PAGES}
        huge = api.get(f"{base}&Limit=99999999999999999999999&Offset=0")
    assert {q: (r.status_code, r.json()) for q, r in replies.items()} == {
        q: (400, message) for q, message in BAD_PAGES.items()
    }
    assert huge.status_code == 200  # a Limit over max_limit is cut to it, not refused
    assert len(huge.json()) == 1


def _set_status(world: World, pat: int, status: int) -> None:
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE patient SET PatStatus = :s WHERE PatNum = :p"), {"s": status, "p": pat}
        )


def test_writes_to_a_deleted_patient_are_refused_and_write_nothing(world: World) -> None:
    clinic = make_clinic(world)
    kept = world.add_document(clinic.pat, "kept.jpg", clinic.xrays)
    archived = world.add_patient("Old", "Archie")
    _set_status(world, clinic.pat, 4)
    _set_status(world, archived, 3)
    data = base64.b64encode(b"\xff\xd8 a jpeg").decode("ascii")

    with serving(api_settings(world), world) as api:
        upload = api.post(
            UPLOAD, json={"PatNum": clinic.pat, "rawBase64": data, "extension": ".jpg"}
        )
        by_url = api.post(SET_BY_URL, json={"PatNum": clinic.pat, "url": "http://x.test/a.jpg"})
        shown = listed(api, clinic.pat)
        to_archived = api.post(
            UPLOAD, json={"PatNum": archived, "rawBase64": data, "extension": ".jpg"}
        )

    assert (upload.status_code, upload.json()) == (400, DELETED)
    assert (by_url.status_code, by_url.json()) == (400, DELETED)
    assert [row["DocNum"] for row in world.documents(clinic.pat)] == [kept]
    files = [p for p in world.root.rglob("*") if p.is_file()]
    assert [p.parent.name for p in files] == [f"OldArchie{archived}"]  # the archived one's
    assert world.image_folder(clinic.pat) == ""  # not even the folder name adopted
    # Reads show a deleted patient's documents as before, as Open Dental's API does.
    assert shown == [(kept, 0)]
    # An archived patient (PatStatus 3) is a patient: Upload works.
    assert to_archived.status_code == 201, to_archived.text


def test_reads_answer_while_the_registration_lock_is_held(bare_world: World) -> None:
    """A registrar inside its locked transaction (a row inserted, not yet committed) does not
    hold up GET: on SQLite reads have their own connections under WAL, on MariaDB no lock."""
    clinic = make_clinic(bare_world)
    world = bare_world
    doc = world.add_document(clinic.pat, "a.jpg", clinic.xrays)
    with (
        serving(api_settings(world), world) as api,
        locked_connection(world.engine, timeout_s=30) as conn,
    ):
        shape = TableShape.reflect(conn, "document")
        conn.execute(
            shape.table.insert(),
            [shape.complete(blank_document(PatNum=clinic.pat, FileName="b.jpg", DocCategory=1))],
        )
        # Within the 30 s the world's busy timeout would make a read wait for the lock.
        reply = api.get(DOCUMENTS, params={"PatNum": clinic.pat}, timeout=10)
        one = api.get(f"{DOCUMENTS}/{doc}", timeout=10)
        conn.rollback()
    assert reply.status_code == 200, reply.text
    assert [e["DocNum"] for e in reply.json()] == [doc]  # the uncommitted row is not seen
    assert one.status_code == 200
