"""The Documents API over HTTP: a real uvicorn server on loopback, called with httpx."""

from __future__ import annotations

import base64
import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import text
from structlog.testing import capture_logs

from atoz_watcher.api import ApiServer
from atoz_watcher.app.wiring import Components
from atoz_watcher.imaging.jobs import ThumbJob
from tests.support.api import (
    AUTH,
    CUST,
    DEV,
    DOCUMENTS,
    FIELDS,
    PAYLOAD,
    SET_BY_URL,
    UPLOAD,
    api_settings,
    b64,
    serving,
)
from tests.support.clinics import Clinic, make_clinic
from tests.support.images import png
from tests.support.leaks import SECRETS
from tests.support.waiting import wait_for
from tests.support.worlds import World, make_world

EXTENSION_MESSAGE = "extension must be a dot and 1 to 10 letters or digits, such as .jpg"
DATE_SHAPE = 'DateCreated must be "yyyy-MM-dd HH:mm:ss" or "yyyy-MM-dd"'


def without_server_time(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "serverDateTime"}


# -- Upload ------------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["LocalAtoZ", "InDatabase"])
def test_upload_stores_the_file_and_replies_with_the_document(clinic: Clinic, storage: str) -> None:
    world = clinic.world
    with serving(api_settings(world, storage=storage), world) as api:
        reply = api.post(
            UPLOAD, json={"PatNum": clinic.pat, "rawBase64": b64(PAYLOAD), "extension": ".jpg"}
        )
        assert reply.status_code == 201, reply.text
        document = reply.json()
        fetched = api.get(reply.headers["Location"])

    doc_num = document["DocNum"]
    name = f"SmithJohn{doc_num}.jpg"
    assert reply.headers["Location"] == f"/api/v1/documents/{doc_num}"
    assert list(document) == FIELDS
    assert fetched.status_code == 200
    assert without_server_time(fetched.json()) == without_server_time(document)
    (row,) = world.documents(clinic.pat)
    assert row["DocNum"] == doc_num
    assert (row["FileName"], row["Description"], row["Note"]) == (name, name, "")
    expected = {
        "MountNum": 0,
        "PatNum": clinic.pat,
        "FileName": name,
        "Description": name,
        "Note": "",
        "docCategory": "X-Rays",
        "DocCategory": clinic.xrays,
        "ImgType": "Document",
        "ToothNumbers": "",
    }
    assert {k: document[k] for k in expected} == expected
    now = datetime.now()
    for field in ("DateCreated", "DateTStamp", "serverDateTime"):
        assert abs((datetime.fromisoformat(document[field]) - now).total_seconds()) < 120
    if storage == "LocalAtoZ":
        assert (clinic.folder / name).read_bytes() == PAYLOAD
        assert document["filePath"] == f"{world.root}/S/SmithJohn{clinic.pat}/{name}"
        assert row["RawBase64"] == ""
    else:
        assert base64.b64decode(row["RawBase64"]) == PAYLOAD
        assert document["filePath"] == ""
        assert clinic.files() == []


def test_upload_takes_every_optional_field(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    with serving(api_settings(clinic.world), clinic.world) as api:
        full = api.post(
            UPLOAD,
            json={
                "PatNum": clinic.pat,
                "RawBase64": b64(PAYLOAD),  # Open Dental's other spelling
                "extension": "png",  # the dot may be left out
                "DocCategory": clinic.photos,
                "ImgType": "Photo",
                "Description": "Extraoral",
                "DateCreated": "2022-03-15 14:30:00",
                "ToothNumbers": "8, 1-5",
            },
        )
        dated = api.post(
            UPLOAD,
            json={
                "PatNum": clinic.pat,
                "rawBase64": b64(b"x"),
                "extension": ".PDF",
                "DocCategory": 0,  # 0 is "not given": the first visible category
                "ImgType": None,
                "DateCreated": "2022-03-15",
            },
        )

    assert full.status_code == 201, full.text
    document = full.json()
    assert document["FileName"] == f"SmithJohn{document['DocNum']}.png"
    assert (document["Description"], document["DateCreated"]) == (
        "Extraoral",
        "2022-03-15 14:30:00",
    )
    assert (document["docCategory"], document["DocCategory"]) == ("Photos", clinic.photos)
    assert (document["ImgType"], document["ToothNumbers"]) == ("Photo", "1,2,3,4,5,8")
    assert (clinic.folder / document["FileName"]).read_bytes() == PAYLOAD
    assert dated.status_code == 201, dated.text
    assert dated.json()["DateCreated"] == "2022-03-15 00:00:00"
    assert (dated.json()["DocCategory"], dated.json()["ImgType"]) == (clinic.xrays, "Document")
    assert dated.json()["FileName"].endswith(".PDF")


DROP = object()
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def _body(clinic: Clinic, changes: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"PatNum": clinic.pat, "rawBase64": b64(PAYLOAD), "extension": ".jpg"}
    for key, value in changes.items():
        if value is DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


UPLOAD_ERRORS: list[tuple[dict[str, Any], int, str]] = [
    ({"PatNum": DROP}, 400, "PatNum is required"),
    ({"rawBase64": DROP}, 400, "rawBase64 is required"),
    ({"rawBase64": ""}, 400, "rawBase64 is required"),
    ({"extension": DROP}, 400, "extension is required"),
    ({"rawBase64": "not base64!"}, 400, "rawBase64 is not valid base64"),
    ({"rawBase64": "QUJD\nREVG"}, 400, "rawBase64 is not valid base64"),
    ({"rawBase64": "QUJDRA"}, 400, "rawBase64 is not valid base64"),
    ({"rawBase64": "QQ==QQ=="}, 400, "rawBase64 is not valid base64"),
    ({"rawBase64": "QUJD-_"}, 400, "rawBase64 is not valid base64"),
    ({"rawBase64": "QUJDé"}, 400, "rawBase64 is not valid base64"),
    ({"rawBase64": 42}, 400, "rawBase64 is invalid: Input should be a valid string"),
    ({"extension": "../../etc/x"}, 400, EXTENSION_MESSAGE),
    ({"extension": ".abcdefghijk"}, 400, EXTENSION_MESSAGE),
    ({"extension": ".j pg"}, 400, EXTENSION_MESSAGE),
    ({"extension": ".jpg/"}, 400, EXTENSION_MESSAGE),
    ({"extension": ""}, 400, EXTENSION_MESSAGE),
    ({"extension": "."}, 400, EXTENSION_MESSAGE),
    (
        {"ImgType": "Xray"},
        400,
        (
            "ImgType is invalid: Input should be 'Document', 'Radiograph', 'Photo', 'File' or "
            "'Attachment'"
        ),
    ),
    ({"ToothNumbers": "1-99"}, 400, "99 is not a valid tooth number."),
    ({"ToothNumbers": "5-1"}, 400, "Range specified is impossible."),
    ({"ToothNumbers": "1-32,51-82,A-T,AS-TS"}, 400, "ToothNumbers is longer than 255 "),
    ({"DateCreated": "15/03/2022"}, 400, DATE_SHAPE),
    ({"DateCreated": "2022-03-15T14:30:00"}, 400, DATE_SHAPE),
    ({"DateCreated": "2022-02-30"}, 400, "DateCreated is not a real date: 2022-02-30"),
    ({"DateCreated": "0001-01-01 00:00:00"}, 400, "DateCreated must be in 1880 or later"),
    ({"PatNum": "abc"}, 400, "PatNum is invalid: Input should be a valid integer"),
    ({"PatNum": True}, 400, "PatNum is invalid: a whole number is expected"),
    ({"PatNum": 1.5}, 400, "PatNum is invalid: Input should be a valid integer"),
    ({"PatNum": 0}, 400, "PatNum is invalid: Input should be greater than or equal to 1"),
    ({"PatNum": 2**63}, 400, "PatNum is invalid: Input should be less than or equal to"),
    ({"PatNum": 987654}, 404, "Patient not found"),
    ({"DocCategory": -1}, 400, "DocCategory is invalid: Input should be greater than or"),
    ({"DocCategory": 987654}, 400, "DocCategory 987654 is not an image category"),
    ({"Description": "x" * 256}, 400, "Description is invalid: String should have at most 255"),
]


@pytest.mark.parametrize(("changes", "status", "message"), UPLOAD_ERRORS)
def test_upload_errors_name_the_field(
    sqlite_clinic: Clinic, changes: dict[str, Any], status: int, message: str
) -> None:
    clinic = sqlite_clinic
    with serving(api_settings(clinic.world), clinic.world) as api:
        reply = api.post(UPLOAD, json=_body(clinic, changes))

    assert reply.status_code == status
    assert reply.headers["content-type"] == "application/json"
    assert isinstance(reply.json(), str)
    assert reply.json().startswith(message), reply.json()
    assert clinic.world.documents(clinic.pat) == []
    assert clinic.files() == []


def test_a_definition_that_is_not_an_image_category_is_refused(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    with serving(api_settings(clinic.world), clinic.world) as api:
        reply = api.post(UPLOAD, json=_body(clinic, {"DocCategory": clinic.other}))

    assert (reply.status_code, reply.json()) == (
        400,
        f"DocCategory {clinic.other} is not an image category",
    )


RAW_BODY_ERRORS = [
    (b"", "The request body must be a JSON object"),
    (b"null", "The request body must be a JSON object"),
    (b"[1, 2]", "The request body must be a JSON object"),
    (b'"PatNum"', "The request body must be a JSON object"),
    (b"{", "The request body is not valid JSON"),
    (b"{'PatNum': 1}", "The request body is not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "The request body must be a JSON object"),
    (b"\xff\xfe{}", "The request body is not valid JSON"),
]


@pytest.mark.parametrize(("body", "message"), RAW_BODY_ERRORS)
@pytest.mark.parametrize("content_type", ["application/json", None])
def test_bodies_that_are_not_json_objects_are_400s(
    sqlite_clinic: Clinic, body: bytes, message: str, content_type: str | None
) -> None:
    clinic = sqlite_clinic
    headers = {"Content-Type": content_type} if content_type else {}
    with serving(api_settings(clinic.world), clinic.world) as api:
        replies = [api.post(path, content=body, headers=headers) for path in (UPLOAD, SET_BY_URL)]

    for reply in replies:
        assert reply.status_code == 400
        assert reply.json() in {message, "There was an error parsing the body"}
    assert clinic.world.documents(clinic.pat) == []


def test_text_that_no_database_can_hold_is_a_400(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    # A lone surrogate, as JSON can spell it and no UTF-8 column can store it.
    body = (
        f'{{"PatNum": {clinic.pat}, "rawBase64": "QUJD", "extension": ".jpg", '
        '"Description": "scan \\ud800"}'
    ).encode()
    with serving(api_settings(clinic.world), clinic.world) as api:
        reply = api.post(UPLOAD, content=body, headers={"Content-Type": "application/json"})

    assert reply.status_code == 400
    assert reply.json().startswith("Description is invalid: ")


def test_upload_size_limits(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    limit = 1000
    with serving(api_settings(clinic.world, max_upload_bytes=limit), clinic.world) as api:
        at_limit = api.post(UPLOAD, json=_body(clinic, {"rawBase64": b64(b"a" * limit)}))
        over = api.post(UPLOAD, json=_body(clinic, {"rawBase64": b64(b"a" * (limit + 1))}))
        # Longer than any base64 of `limit` bytes: refused before decoding.
        long_text = api.post(UPLOAD, json=_body(clinic, {"rawBase64": "QUJD" * 400}))
        huge = api.post(UPLOAD, json=_body(clinic, {"rawBase64": "QUJD" * 600_000}))
        chunked = api.post(
            UPLOAD,
            content=(b" " * 65536 for _ in range(40)),
            headers={"Content-Type": "application/json"},
        )

    assert at_limit.status_code == 201, at_limit.text
    too_large = "rawBase64 is larger than the limit of 1000 bytes"
    assert (over.status_code, over.json()) == (400, too_large)
    assert (long_text.status_code, long_text.json()) == (400, too_large)
    assert (huge.status_code, huge.json()) == (413, "The request body is too large")
    assert (chunked.status_code, chunked.json()) == (413, "The request body is too large")
    assert len(clinic.world.documents(clinic.pat)) == 1


def test_a_2_gb_body_is_refused_without_being_read(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    with serving(api_settings(clinic.world), clinic.world) as api:
        request = (
            f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 2147483648\r\n\r\n{"
        ).encode()
        address = str(api.base_url).removeprefix("http://").rstrip("/")
        host, _, port = address.rpartition(":")
        import socket  # noqa: PLC0415 - only this test speaks raw HTTP

        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(request)
            answer = b""
            while not answer.endswith(b'"'):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'"The request body is too large"')


@pytest.mark.parametrize("storage", ["LocalAtoZ", "InDatabase"])
def test_a_50_mb_upload(clinic: Clinic, storage: str) -> None:
    world = clinic.world
    if storage == "InDatabase" and world.kind != "sqlite":
        pytest.skip("MariaDB's MEDIUMTEXT RawBase64 holds 16 MB: see the next test")
    data = os.urandom(50 * 1024 * 1024)
    with serving(api_settings(world, storage=storage), world) as api:
        reply = api.post(UPLOAD, json=_body(clinic, {"rawBase64": b64(data), "extension": ".dcm"}))

    assert reply.status_code == 201, reply.text
    name = reply.json()["FileName"]
    if storage == "LocalAtoZ":
        assert (clinic.folder / name).read_bytes() == data
    else:
        (row,) = world.documents(clinic.pat)
        assert base64.b64decode(row["RawBase64"]) == data


def test_a_file_too_large_for_raw_base64_is_a_400(clinic: Clinic) -> None:
    world = clinic.world
    if world.kind == "sqlite":
        pytest.skip("SQLite's text has no 16 MB limit")
    data = os.urandom(13 * 1024 * 1024)  # 17.3 MB of base64: more than MEDIUMTEXT holds
    with serving(api_settings(world, storage="InDatabase"), world) as api:
        reply = api.post(UPLOAD, json=_body(clinic, {"rawBase64": b64(data)}))

    assert reply.status_code == 400
    assert reply.json().startswith("rawBase64 is too large for the database: ")
    assert world.documents(clinic.pat) == []


def test_a_failed_write_leaves_neither_row_nor_file(clinic: Clinic) -> None:
    world = clinic.world
    # A file where the patient's folder must go: the folder cannot be made.
    clinic.folder.parent.mkdir(parents=True)
    clinic.folder.write_bytes(b"in the way")
    with serving(api_settings(world), world) as api:
        reply = api.post(UPLOAD, json=_body(clinic, {}))

    assert reply.status_code == 503
    assert reply.json().startswith("The file could not be stored: ")
    assert world.documents(clinic.pat) == []
    assert clinic.files() == [clinic.folder]
    assert clinic.folder.read_bytes() == b"in the way"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_an_unwritable_patient_folder_leaves_neither_row_nor_file(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    clinic.folder.mkdir(parents=True)
    clinic.folder.chmod(0o500)
    try:
        with serving(api_settings(clinic.world), clinic.world) as api:
            reply = api.post(UPLOAD, json=_body(clinic, {}))
    finally:
        clinic.folder.chmod(0o700)

    assert (reply.status_code, reply.json()) == (
        503,
        "The file could not be stored: Permission denied",
    )
    assert clinic.world.documents(clinic.pat) == []
    assert clinic.files() == []


def test_an_uploaded_image_gets_its_thumbnail(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    with serving(api_settings(clinic.world, thumbnails=True), clinic.world) as api:
        reply = api.post(UPLOAD, json=_body(clinic, {"rawBase64": b64(png()), "extension": "png"}))
        assert reply.status_code == 201, reply.text
        thumbnail = clinic.folder / "Thumbnails" / reply.json()["FileName"]
        wait_for(thumbnail.exists, timeout=30)

    with Image.open(thumbnail) as image:
        assert image.size == (100, 100)


def test_an_upload_hands_its_thumbnail_to_the_queue_it_was_given(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    queued: list[ThumbJob] = []  # as inside the daemon, whose queue renders it
    settings = api_settings(clinic.world, thumbnails=True)
    app = Components.from_settings(settings, clinic.world.engine).api(on_stored=queued.append)
    with (
        ApiServer(app, host="127.0.0.1", port=0) as server,
        httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as api,
    ):
        reply = api.post(UPLOAD, json=_body(clinic, {"rawBase64": b64(png()), "extension": "png"}))
        assert reply.status_code == 201, reply.text

    document = reply.json()
    (job,) = queued
    assert job.source == clinic.folder / document["FileName"]
    assert job.dest == clinic.folder / "Thumbnails" / document["FileName"]
    assert (job.pat_num, job.doc_num, job.force) == (clinic.pat, document["DocNum"], True)
    assert not (clinic.folder / "Thumbnails").exists()  # the queue's to make, not the app's


# SQLAlchemy keeps every statement it compiled in the engine's LRU cache (500, pruned at 750).
# An Upload that compiles a statement of its own each time fills it: about 120 KB of daemon
# memory per Upload, for the first 750 (docs/RELIABILITY.md, "Load").
MANY_UPLOADS = 200
NEW_STATEMENTS_ALLOWED = 5  # a first upload of each storage path; never one per upload


def compiled_statements(world: World) -> int:
    """How many compiled statements the engine's cache holds."""
    cache = world.engine._compiled_cache
    assert cache is not None, "the engine caches no statement at all"
    return len(cache)


@pytest.mark.parametrize("storage", ["LocalAtoZ", "InDatabase"])
def test_uploads_reuse_their_compiled_statements(sqlite_clinic: Clinic, storage: str) -> None:
    world = sqlite_clinic.world
    with serving(api_settings(world, storage=storage), world) as api:
        # Warm up: the first Upload compiles the statements every Upload runs.
        assert api.post(UPLOAD, json=_body(sqlite_clinic, {})).status_code == 201
        compiled_before = compiled_statements(world)
        for _ in range(MANY_UPLOADS):
            reply = api.post(UPLOAD, json=_body(sqlite_clinic, {}))
            assert reply.status_code == 201, reply.text
        compiled_after = compiled_statements(world)

    assert compiled_after - compiled_before <= NEW_STATEMENTS_ALLOWED, (
        f"{MANY_UPLOADS} uploads compiled {compiled_after - compiled_before} new statements"
    )
    assert len(world.documents(sqlite_clinic.pat)) == MANY_UPLOADS + 1


# -- GET -----------------------------------------------------------------------------------------


def test_list_shows_every_field_as_the_seed_does(clinic: Clinic) -> None:
    world = clinic.world
    jones = world.add_patient("Jones", "Ann", "jonesfolder")
    stamp = datetime(2021, 4, 8, 8, 12, 21)
    scan = world.add_document(
        clinic.pat,
        "exampleimage.jpg",
        clinic.xrays,
        Description="Scanned image",
        DateCreated=stamp,
        ToothNumbers="1,2,3,4,5",
        ImgType=1,
    )
    pending = world.add_document(
        clinic.pat,
        "",
        clinic.photos,
        Note="_rawBase64_:.jpg_" + b64(PAYLOAD),
        DateCreated=datetime(1, 1, 1),
    )
    world.add_document(jones, "ann.png", clinic.photos, DateCreated=stamp, ImgType=2)
    settings = api_settings(
        world, file_path_root="\\\\server\\OpenDentImages\\", file_path_separator="\\"
    )
    with serving(settings, world) as api:
        smith = api.get(DOCUMENTS, params={"PatNum": clinic.pat})
        ann = api.get(DOCUMENTS, params={"PatNum": jones})

    assert smith.status_code == 200
    assert b64(PAYLOAD)[:40] not in smith.text
    first, second = smith.json()
    assert list(first) == FIELDS
    assert (first["DocNum"], second["DocNum"]) == (pending, scan)  # no date sorts first
    assert second == {
        "DocNum": scan,
        "MountNum": 0,
        "PatNum": clinic.pat,
        "FileName": "exampleimage.jpg",
        "filePath": f"\\\\server\\OpenDentImages\\S\\SmithJohn{clinic.pat}\\exampleimage.jpg",
        "Description": "Scanned image",
        "Note": "",
        "DateCreated": "2021-04-08 08:12:21",
        "docCategory": "X-Rays",
        "DocCategory": clinic.xrays,
        "ImgType": "Radiograph",
        "ToothNumbers": "1,2,3,4,5",
        "DateTStamp": second["DateTStamp"],
        "serverDateTime": second["serverDateTime"],
    }
    assert TIMESTAMP.fullmatch(second["DateTStamp"])
    assert TIMESTAMP.fullmatch(second["serverDateTime"])
    assert (first["Note"], first["DateCreated"], first["filePath"]) == ("_rawBase64_:.jpg", "", "")
    (only,) = ann.json()
    assert only["filePath"] == "\\\\server\\OpenDentImages\\J\\jonesfolder\\ann.png"
    assert only["ImgType"] == "Photo"


def test_in_database_storage_has_no_file_path(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    clinic.world.add_document(clinic.pat, "a.jpg", clinic.xrays)
    with serving(api_settings(clinic.world, storage="InDatabase"), clinic.world) as api:
        (document,) = api.get(DOCUMENTS, params={"PatNum": clinic.pat}).json()

    assert document["filePath"] == ""


def _mount(world: World, pat: int, category: int, when: datetime, **columns: Any) -> int:
    return world._insert(
        "mount",
        {"PatNum": pat, "DocCategory": category, "DateCreated": when, "Note": "", **columns},
    )


def _item(world: World, mount: int, order: int) -> int:
    return world._insert("mountitem", {"MountNum": mount, "ItemOrder": order, "TextShowing": ""})


@pytest.mark.parametrize("kind", ["mariadb", "mariadb-opendental"])
def test_dates_no_calendar_has_are_listed_as_no_date(kind: str, tmp_path: Path) -> None:
    """A lax sql_mode lets MySQL store 2020-02-30 or 2020-00-10: the list shows those as no
    date (""), as it shows the zero date and a date before 1880; a real date as it is."""
    for world in make_world(kind, tmp_path):
        clinic = make_clinic(world)
        stored = {
            "2020-02-30 10:00:00": "",
            "2020-00-10 00:00:00": "",
            "2020-05-00 00:00:00": "",
            "0000-00-00 00:00:00": "",
            "1850-01-01 00:00:00": "",
            "2020-02-29 23:59:59": "2020-02-29 23:59:59",
        }
        numbers = {when: world.add_document(clinic.pat, "a.jpg", clinic.xrays) for when in stored}
        with world.engine.begin() as conn:
            conn.exec_driver_sql("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
            for when, number in numbers.items():
                conn.execute(
                    text("UPDATE document SET DateCreated = :d WHERE DocNum = :n"),
                    {"d": when, "n": number},
                )
            conn.exec_driver_sql("SET SESSION sql_mode = DEFAULT")

        with serving(api_settings(world), world) as api:
            listed = api.get(DOCUMENTS, params={"PatNum": clinic.pat}).json()

        shown = {entry["DocNum"]: entry["DateCreated"] for entry in listed}
        assert shown == {numbers[when]: text_shown for when, text_shown in stored.items()}


def test_list_is_ordered_by_date_with_documents_under_their_mount(bare_world: World) -> None:
    clinic = make_clinic(bare_world)
    world, pat, cat = clinic.world, clinic.pat, clinic.xrays

    def doc(name: str, when: datetime, item: int = 0) -> int:
        return world.add_document(pat, name, cat, DateCreated=when, MountItemNum=item)

    late = doc("late.jpg", datetime(2021, 5, 1))
    early = doc("early.jpg", datetime(2021, 1, 1))
    mount = _mount(world, pat, clinic.photos, datetime(2021, 3, 1), Description=" 5/11/2021: 4BW")
    world._insert(
        "mount",
        {"PatNum": pat, "DocCategory": cat, "Note": "", "DateCreated": datetime(2021, 3, 1, 1)},
    )
    second_item, first_item = _item(world, mount, 1), _item(world, mount, 0)
    on_second = doc("old-on-mount.jpg", datetime(2020, 1, 1), second_item)
    on_first = doc("new-on-mount.jpg", datetime(2022, 1, 1), first_item)
    orphan = doc("orphan.jpg", datetime(2021, 4, 1), 987654)
    other = world.add_patient("Other", "Pat")
    _mount(world, other, cat, datetime(2021, 3, 1))
    world.add_document(other, "theirs.jpg", cat)

    with serving(api_settings(world), world) as api:
        listed = api.get(DOCUMENTS, params={"PatNum": pat}).json()
        on_mount = api.get(f"{DOCUMENTS}/{on_second}").json()

    assert [(e["DocNum"], e["MountNum"]) for e in listed] == [
        (early, 0),
        (0, mount),
        (on_first, mount),
        (on_second, mount),
        (0, mount + 1),
        (orphan, 0),
        (late, 0),
    ]
    mount_entry = listed[1]
    assert list(mount_entry) == FIELDS
    assert mount_entry == {
        "DocNum": 0,
        "MountNum": mount,
        "PatNum": pat,
        "FileName": "",
        "filePath": "",
        "Description": " 5/11/2021: 4BW",
        "Note": "",
        "DateCreated": "2021-03-01 00:00:00",
        "docCategory": "Photos",
        "DocCategory": clinic.photos,
        "ImgType": "",
        "ToothNumbers": "",
        "DateTStamp": "",
        "serverDateTime": mount_entry["serverDateTime"],
    }
    assert on_mount["MountNum"] == mount


GET_ERRORS = [
    (DOCUMENTS, 400, "PatNum is required"),
    (f"{DOCUMENTS}?PatNum=", 400, "PatNum is invalid: Input should be a valid integer"),
    (f"{DOCUMENTS}?PatNum=abc", 400, "PatNum is invalid: Input should be a valid integer"),
    (f"{DOCUMENTS}?PatNum=-3", 400, "PatNum is invalid: Input should be greater than"),
    (f"{DOCUMENTS}?PatNum=987654", 404, "Patient not found"),
    (f"{DOCUMENTS}/987654", 404, "Document not found"),
    (f"{DOCUMENTS}/abc", 404, "Not Found"),
    (f"{DOCUMENTS}/-1", 404, "Not Found"),
    (f"{DOCUMENTS}/0", 400, "DocNum is invalid: Input should be greater than or equal to 1"),
    ("/api/v1/nothing", 404, "Not Found"),
    (UPLOAD, 405, "Method Not Allowed"),
]


@pytest.mark.parametrize(("path", "status", "message"), GET_ERRORS)
def test_get_errors(sqlite_clinic: Clinic, path: str, status: int, message: str) -> None:
    with serving(api_settings(sqlite_clinic.world), sqlite_clinic.world) as api:
        reply = api.get(path)

    assert reply.status_code == status
    assert reply.json().startswith(message), reply.json()


def test_a_wrong_method_is_a_405_string(sqlite_clinic: Clinic) -> None:
    with serving(api_settings(sqlite_clinic.world), sqlite_clinic.world) as api:
        reply = api.delete(f"{DOCUMENTS}/1")

    assert (reply.status_code, reply.json()) == (405, "Method Not Allowed")
    assert reply.headers["Allow"] == "GET"


# -- SetByUrl ------------------------------------------------------------------------------------


def test_set_by_url_inserts_the_placeholder_row(clinic: Clinic) -> None:
    world = clinic.world
    url = "https://images.example.com/scans/pano%201.JPG?sig=a+b&x=1"
    with serving(api_settings(world), world) as api:
        reply = api.post(
            SET_BY_URL,
            json={
                "PatNum": clinic.pat,
                "url": url,
                "DocCategory": clinic.photos,
                "Description": "Extraoral",
                "ImgType": "Radiograph",
                "ToothNumbers": "1,2",
            },
        )
        fetched = api.get(reply.headers["Location"])

    assert reply.status_code == 201, reply.text
    document = reply.json()
    assert reply.headers["Location"] == f"/api/v1/documents/{document['DocNum']}"
    assert without_server_time(fetched.json()) == without_server_time(document)
    (row,) = world.documents(clinic.pat)
    assert row["Note"] == "_download_:" + url
    assert (row["FileName"], row["Description"], row["ToothNumbers"]) == ("", "Extraoral", "1,2")
    assert (row["DocCategory"], row["ImgType"]) == (clinic.photos, 1)
    assert document["Note"] == "_download_:" + url
    assert (document["filePath"], document["FileName"]) == ("", "")
    assert clinic.files() == []


SET_BY_URL_ERRORS: list[tuple[dict[str, Any], int, str]] = [
    ({"url": DROP}, 400, "url is required"),
    ({"url": ""}, 400, "url is required"),
    ({"url": "ftp://example.com/a.jpg"}, 400, "url must be an http or https URL with a host"),
    ({"url": "file:///etc/passwd"}, 400, "url must be an http or https URL with a host"),
    ({"url": "http://"}, 400, "url must be an http or https URL with a host"),
    ({"url": "example.com/a.jpg"}, 400, "url must be an http or https URL with a host"),
    ({"url": "http://exa mple.com/"}, 400, "url must not contain spaces or control characters"),
    ({"url": "http://[::1/"}, 400, "url is not a valid URL"),
    ({"url": "http://example.com:99999/"}, 400, "url is not a valid URL"),
    ({"PatNum": DROP}, 400, "PatNum is required"),
    ({"PatNum": 987654}, 404, "Patient not found"),
    ({"ImgType": "photo"}, 400, "ImgType is invalid"),
    ({"ToothNumbers": "Z"}, 400, "Z is not a valid tooth number."),
]


@pytest.mark.parametrize(("changes", "status", "message"), SET_BY_URL_ERRORS)
def test_set_by_url_errors(
    sqlite_clinic: Clinic, changes: dict[str, Any], status: int, message: str
) -> None:
    clinic = sqlite_clinic
    body = {"PatNum": clinic.pat, "url": "https://example.com/a.jpg"}
    for key, value in changes.items():
        if value is DROP:
            body.pop(key)
        else:
            body[key] = value
    with serving(api_settings(clinic.world), clinic.world) as api:
        reply = api.post(SET_BY_URL, json=body)

    assert reply.status_code == status
    assert reply.json().startswith(message), reply.json()
    assert clinic.world.documents(clinic.pat) == []


# -- Authentication and logs ---------------------------------------------------------------------


AUTH_CASES = [
    (None, "Authorization header is missing"),
    ("", "Authorization header must be: ODFHIR <DeveloperKey>/<CustomerKey>"),
    (f"Bearer {DEV}/{CUST}", "Authorization header must be: ODFHIR <DeveloperKey>/<CustomerKey>"),
    (f"ODFHIR {DEV}", "Authorization header must be: ODFHIR <DeveloperKey>/<CustomerKey>"),
    ("ODFHIR /", "Authorization header must be: ODFHIR <DeveloperKey>/<CustomerKey>"),
    (f"ODFHIR {DEV}/", "Authorization header must be: ODFHIR <DeveloperKey>/<CustomerKey>"),
    (f"ODFHIR {DEV}/wrong", "Invalid DeveloperKey or CustomerKey"),
    (f"ODFHIR {CUST}/{DEV}", "Invalid DeveloperKey or CustomerKey"),
    (f"ODFHIR {DEV}/another-cust", "Invalid DeveloperKey or CustomerKey"),
    (f"ODFHIR {DEV}x/{CUST}", "Invalid DeveloperKey or CustomerKey"),
    ("ODFHIR dév/cüst".encode("latin-1"), "Invalid DeveloperKey or CustomerKey"),
    (b"ODFHIR \xff\xfe/\x80", "Invalid DeveloperKey or CustomerKey"),
]


@pytest.mark.parametrize(("header", "message"), AUTH_CASES)
def test_every_endpoint_needs_a_configured_key_pair(
    sqlite_clinic: Clinic, header: str | bytes | None, message: str
) -> None:
    clinic = sqlite_clinic
    headers = {"Authorization": header} if header is not None else {}
    with serving(api_settings(clinic.world), clinic.world) as api:
        if header is None:
            del api.headers["Authorization"]
        replies = [
            api.get(DOCUMENTS, params={"PatNum": clinic.pat}, headers=headers),
            api.get(f"{DOCUMENTS}/1", headers=headers),
            api.post(UPLOAD, json=_body(clinic, {}), headers=headers),
            api.post(SET_BY_URL, json={"PatNum": clinic.pat, "url": "http://a/b"}, headers=headers),
            api.get("/api/v1/nothing", headers=headers),
        ]

    for reply in replies:
        assert (reply.status_code, reply.json()) == (401, message)
        assert reply.headers["WWW-Authenticate"] == "ODFHIR"
    assert clinic.world.documents(clinic.pat) == []


def test_any_configured_pair_works_and_the_schema_is_public(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    with serving(api_settings(clinic.world), clinic.world) as api:
        other = api.get(
            DOCUMENTS,
            params={"PatNum": clinic.pat},
            headers={"Authorization": "ODFHIR another-dev/another-cust"},
        )
        lower = api.get(
            DOCUMENTS,
            params={"PatNum": clinic.pat},
            headers={"Authorization": f"odfhir {DEV}/{CUST}"},
        )
        del api.headers["Authorization"]
        schema = api.get("/api/v1/openapi.json")

    assert (other.status_code, other.json()) == (200, [])
    assert lower.status_code == 200
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert set(paths) == {
        "/api/v1/documents",
        "/api/v1/documents/{DocNum}",
        "/api/v1/documents/Upload",
        "/api/v1/documents/SetByUrl",
        "/api/v1/documents/UploadSftp",
        "/api/v1/documents/DownloadSftp",
        "/api/v1/documents/Thumbnails",
        "/api/v1/documents/DownloadMount",
    }
    assert all("422" not in op["responses"] for path in paths.values() for op in path.values())


def test_logs_hold_no_key_header_or_payload(
    sqlite_clinic: Clinic, caplog: pytest.LogCaptureFixture
) -> None:
    clinic = sqlite_clinic
    secret_payload = b64(os.urandom(3000))
    SECRETS.add_payload(secret_payload)
    clinic.world.add_document(
        clinic.pat, "", clinic.xrays, Note="_rawBase64_:.jpg_" + secret_payload
    )
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs, serving(api_settings(clinic.world), clinic.world) as api:
        api.post(UPLOAD, json=_body(clinic, {"rawBase64": secret_payload}))
        api.post(UPLOAD, json=_body(clinic, {"rawBase64": secret_payload + "!"}))
        api.get(DOCUMENTS, params={"PatNum": clinic.pat})
        api.get(
            DOCUMENTS, params={"PatNum": clinic.pat}, headers={"Authorization": f"ODFHIR {DEV}/x"}
        )
        api.get(
            DOCUMENTS, params={"PatNum": clinic.pat}, headers={"Authorization": f"ODFHIR x/{CUST}"}
        )

    # The server's side only: httpx's own debug lines show the client's response headers.
    server_lines = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    written = repr(logs) + "\n".join(server_lines)
    assert any(entry["event"] == "api.request" for entry in logs)
    for secret in (DEV, CUST, secret_payload[:32], "Authorization", "ODFHIR"):
        assert secret not in written


def test_the_database_going_away_is_a_503(tmp_path: Path) -> None:
    for world in make_world("sqlite", tmp_path):
        clinic = make_clinic(world)
        with serving(api_settings(world), world) as api:
            with world.engine.begin() as conn:
                conn.execute(text("DROP TABLE document"))
            listed = api.get(DOCUMENTS, params={"PatNum": clinic.pat})
            uploaded = api.post(UPLOAD, json=_body(clinic, {}))

        assert listed.status_code == 503
        assert (uploaded.status_code, uploaded.json()) == (
            503,
            (
                "the database has no 'document' table; run `atoz-watcher init-db` or point "
                "database_url at Open Dental's database"
            ),
        )
