"""The materialiser: placeholder rows (Upload, SetByUrl) made into files in place.

Downloads come from real HTTP servers on loopback; addresses that must be refused are either
names resolved by a table (to 10.0.0.5 and the like: never connected to) or a canary server
on 127.0.0.2 that must see no request.
"""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import time
from collections.abc import Iterator, MutableMapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import text
from structlog.testing import capture_logs

from atoz_watcher.app.commands.materialize import run_materialize
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.sections import MaterializerSettings
from atoz_watcher.config.settings import Settings
from atoz_watcher.db import queries
from atoz_watcher.db.activity import NO_RECORD, ActivityLog, Recorder
from atoz_watcher.db.engine import make_engine
from atoz_watcher.documents.materializer import Materializer, Summary
from atoz_watcher.documents.materializer_worker import JOIN_S, MaterializerWorker
from atoz_watcher.imaging.jobs import Outcome, ThumbJob
from atoz_watcher.imaging.queue import RenderNow
from atoz_watcher.imaging.render import Renderer
from atoz_watcher.net.download import MAX_REDIRECTS, extension_for
from atoz_watcher.net.guard import Resolver
from atoz_watcher.rules.notes import (
    BadNoteError,
    DownloadNote,
    Failure,
    MaterializeError,
    RawBase64Note,
    decode_payload,
    parse_note,
    redact_url,
)
from atoz_watcher.storage import InDatabase, LocalAtoZ, Storage
from tests.support.images import png
from tests.support.placeholders import set_by_url
from tests.support.sites import Route, Site, body, redirect, serving, table_resolver
from tests.support.waiting import wait_for
from tests.support.worlds import World

RESOLVER = table_resolver({"intranet.test": ["10.0.0.5"], "metadata.test": ["169.254.169.254"]})


PNG = png((120, 80), (200, 30, 90))


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Outcomes(list[str]):
    def __call__(self, outcome: str) -> None:
        self.append(outcome)


def materializer(
    world: World,
    *,
    storage: Storage | None = None,
    clock: Clock | None = None,
    resolver: Resolver = RESOLVER,
    outcomes: Outcomes | None = None,
    activity: Recorder = NO_RECORD,
    **settings: Any,
) -> Materializer:
    options: dict[str, Any] = {"allow_hosts": ("127.0.0.1",), "max_attempts": 3}
    options.update(settings)
    return Materializer(
        world.engine,
        storage or LocalAtoZ(world.root),
        MaterializerSettings(**options),
        lock_timeout_s=30,
        on_stored=RenderNow(Renderer()),
        on_outcome=outcomes,
        clock=clock or Clock(),
        resolver=resolver,
        activity=activity,
    )


@pytest.fixture
def smith(world: World) -> tuple[World, int, int]:
    category = world.add_category("X-Rays", order=0)
    pat = world.add_patient("Smith", "John")
    return world, pat, category


@pytest.fixture
def site() -> Iterator[Site]:
    with serving({"/scans/pano.png": body(PNG, "image/png")}) as running:
        yield running


def row(world: World, doc_num: int) -> dict[str, Any]:
    (found,) = [d for d in world.documents() if d["DocNum"] == doc_num]
    return found


Logs = list[MutableMapping[str, Any]]


def events(logs: Logs, name: str) -> Logs:
    return [entry for entry in logs if entry["event"] == name]


# -- pure parts ------------------------------------------------------------------------------


class TestParseNote:
    @pytest.mark.parametrize(
        ("note", "expected"),
        [
            ("", None),
            ("Patient brought this on a CD", None),
            ("_RAWBASE64_:.jpg_AAAA", None),  # the prefixes are exact, as in Open Dental
            ("_Download_:http://a.test/x", None),
            (" _download_:http://a.test/x", None),
            ("_download_:https://a.test/pano.png", DownloadNote("https://a.test/pano.png")),
            ("_download_: https://a.test/p.png \n", DownloadNote("https://a.test/p.png")),
            ("_rawBase64_:.jpg_errGEreRi3f", RawBase64Note(".jpg", "errGEreRi3f")),
            ("_rawBase64_:.JPG_AAAA", RawBase64Note(".JPG", "AAAA")),
            ("_rawBase64_:.docx_AA_AA", RawBase64Note(".docx", "AA_AA")),
            ("_rawBase64_:.abcdefghij_AA", RawBase64Note(".abcdefghij", "AA")),
            ("_rawBase64_:.pdf_", RawBase64Note(".pdf", "")),  # empty: decode_payload refuses
        ],
    )
    def test_notes(self, note: str, expected: object) -> None:
        assert parse_note(note) == expected

    @pytest.mark.parametrize(
        ("note", "reason"),
        [
            ("_download_:", "without a URL"),
            ("_download_:   ", "without a URL"),
            ("_rawBase64_:.jpg", "without the '_'"),
            ("_rawBase64_:jpg_AAAA", "unsafe extension 'jpg'"),
            ("_rawBase64_:._AAAA", "unsafe extension '.'"),
            ("_rawBase64_:.abcdefghijk_AA", "unsafe extension"),
            ("_rawBase64_:.j/g_AA", "unsafe extension '.j/g'"),
            ("_rawBase64_:.jp g_AA", "unsafe extension"),
            ("_rawBase64_:.jpé_AA", "unsafe extension"),
            ("_rawBase64_:.١٢_AA", "unsafe extension"),  # non-ASCII digits
            ("_rawBase64_:" + "x" * 500 + "_AA", "unsafe extension 'xxxxxxxxxxxxxxxxxxxx...'"),
        ],
    )
    def test_bad_placeholders_are_errors_with_a_reason(self, note: str, reason: str) -> None:
        with pytest.raises(BadNoteError) as caught:
            parse_note(note)
        assert reason in caught.value.reason
        assert caught.value.kind is Failure.BAD_NOTE

    def test_the_repr_of_a_note_never_holds_its_payload(self) -> None:
        note = RawBase64Note(".jpg", "SECRETPAYLOAD" * 10)
        assert "SECRET" not in repr(note)


class TestDecodePayload:
    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            (base64.b64encode(PNG).decode(), PNG),
            ("aGVs\r\nbG8=\n", b"hello"),  # line breaks, as .NET writes with line breaks on
            (" aGVsbG8= ", b"hello"),
        ],
    )
    def test_valid(self, payload: str, expected: bytes) -> None:
        assert decode_payload(RawBase64Note(".png", payload), max_bytes=10**6) == expected

    @pytest.mark.parametrize(
        ("payload", "kind", "reason"),
        [
            ("", Failure.BAD_NOTE, "holds no data"),
            ("   \n", Failure.BAD_NOTE, "holds no data"),
            ("@@@@not-base64", Failure.BAD_NOTE, "not valid base64"),
            ("aGVsbG8", Failure.BAD_NOTE, "not valid base64"),  # padding missing
            ("aGVs-G8=", Failure.BAD_NOTE, "not valid base64"),  # URL-safe alphabet
            (base64.b64encode(b"x" * 101).decode(), Failure.TOO_LARGE, "more than 100"),
        ],
    )
    def test_invalid(self, payload: str, kind: Failure, reason: str) -> None:
        with pytest.raises(MaterializeError) as caught:
            decode_payload(RawBase64Note(".png", payload), max_bytes=100)
        assert caught.value.kind is kind
        assert reason in caught.value.reason
        assert payload.strip() == "" or payload[:8] not in caught.value.reason


class TestRedactUrl:
    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("https://a.test/x.png", "https://a.test/x.png"),
            ("https://user:s3cret@a.test/x.png", "https://a.test/x.png"),
            ("https://user:p@ss@a.test:8443/x.png", "https://a.test:8443/x.png"),
            ("https://a.test/x.png?X-Amz-Signature=abc&t=1", "https://a.test/x.png"),
            ("https://a.test/x.png#frag", "https://a.test/x.png"),
            ("https://u:p@a.test", "https://a.test"),
            ("user:pw@a.test/x", "a.test/x"),
            ("not a url", "not a url"),
        ],
    )
    def test_redacted(self, url: str, shown: str) -> None:
        assert redact_url(url) == shown


class TestExtensionFor:
    @pytest.mark.parametrize(
        ("urls", "content_type", "data", "extension"),
        [
            (["https://a.test/pano.png"], "application/octet-stream", b"", ".png"),
            (["https://a.test/PANO.JPG"], "", b"", ".jpg"),
            (["https://a.test/scan.dcm"], "application/octet-stream", b"", ".dcm"),
            (["https://a.test/files/7", "https://a.test/x.tif"], "", b"", ".tif"),
            (["https://a.test/get.php?id=3"], "image/jpeg", b"", ".jpg"),
            (["https://a.test/view.aspx"], "application/pdf; name=x", b"", ".pdf"),
            (["https://a.test/a.verylongextension"], "image/png", b"", ".png"),
            (["https://a.test/file"], "IMAGE/PNG", b"", ".png"),
            (["https://a.test/file"], "application/octet-stream", PNG, ".png"),
            (["https://a.test/file"], "", b"\xff\xd8\xff\xe0rest", ".jpg"),
            (["https://a.test/file"], "", b"%PDF-1.7", ".pdf"),
            (["https://a.test/file"], "", b"\0" * 128 + b"DICM", ".dcm"),
            (["https://a.test/file"], "", b"RIFF\0\0\0\0WEBPVP8 ", ".webp"),
            (["https://a.test/file"], "", b"BM" + (16).to_bytes(4, "little") + b"\0" * 10, ".bmp"),
            (["https://a.test/file"], "", b"BM is the start of this text", ""),
            (["https://a.test/file"], "application/octet-stream", b"unknown", ""),
        ],
    )
    def test_order(self, urls: list[str], content_type: str, data: bytes, extension: str) -> None:
        parsed = tuple(httpx.URL(u) for u in urls)
        assert extension_for(parsed, content_type, data) == extension


# -- httpx only with the first download -----------------------------------------------------


@pytest.mark.process
@pytest.mark.parametrize(
    "module", ["atoz_watcher.app.daemon", "atoz_watcher.documents.materializer"]
)
def test_starting_up_imports_no_http_client(module: str) -> None:
    """``import httpx`` costs the daemon ~18 MB; most practices never download a file."""
    program = (
        f"import sys, {module}\n"
        "names = ('httpx', 'httpcore', 'netguard', 'download')\n"
        "print(sorted(k for k in sys.modules for m in names"
        " if k == m or k.startswith(m + '.') or k.endswith('.' + m)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_downloader_is_made_by_the_first_download_note_only(
    smith: tuple[World, int, int], site: Site
) -> None:
    world, pat, category = smith
    raw = world.add_document(
        pat, "", category, Note="_rawBase64_:.png_" + base64.b64encode(PNG).decode()
    )
    mat = materializer(world)

    assert mat.run_once().materialised == [(raw, f"SmithJohn{raw}.png")]
    assert mat._downloader is None

    first = set_by_url(world, pat, site.url("/scans/pano.png"))
    assert [d for d, _ in mat.run_once().materialised] == [first]
    made = mat._downloader
    assert made is not None
    second = set_by_url(world, pat, site.url("/scans/pano.png"))
    assert [d for d, _ in mat.run_once().materialised] == [second]
    assert mat._downloader is made


# -- downloads into rows ---------------------------------------------------------------------


def test_set_by_url_is_materialised_in_place_with_its_thumbnail(
    smith: tuple[World, int, int], site: Site
) -> None:
    world, pat, category = smith
    doc_num = set_by_url(world, pat, site.url("/scans/pano.png"))
    outcomes = Outcomes()

    summary = materializer(world, outcomes=outcomes).run_once()

    name = f"SmithJohn{doc_num}.png"
    assert summary.materialised == [(doc_num, name)]
    assert summary.thumbnails == {Outcome.MADE: 1}
    found = row(world, doc_num)
    assert (found["FileName"], found["Note"], found["Description"]) == (name, "", "Pano")
    assert (found["PatNum"], found["DocCategory"]) == (pat, category)
    folder = world.folder(f"SmithJohn{pat}")
    assert (folder / name).read_bytes() == PNG
    with Image.open(folder / "Thumbnails" / name) as thumbnail:
        assert thumbnail.size == (100, 100)
    assert outcomes == ["materialised"]
    assert len(world.documents()) == 1
    # A second pass finds nothing left to do.
    assert materializer(world).run_once() == Summary()


def test_a_download_into_the_database(smith: tuple[World, int, int], site: Site) -> None:
    world, pat, _ = smith
    doc_num = set_by_url(world, pat, site.url("/scans/pano.png"))

    materializer(world, storage=InDatabase()).run_once()

    found = row(world, doc_num)
    assert found["FileName"] == f"SmithJohn{doc_num}.png"
    assert base64.b64decode(found["RawBase64"]) == PNG
    assert not any(p.is_file() for p in world.root.rglob("*"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://intranet.test/x.png", "10.0.0.5 is a private address"),
        ("http://metadata.test/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://10.1.2.3:8080/x.png", "private"),
        ("http://[::1]:9/x.png", "loopback"),
        ("ftp://127.0.0.1/x.png", "scheme 'ftp'"),
    ],
)
def test_internal_urls_are_refused_and_the_row_kept(
    smith: tuple[World, int, int], url: str, reason: str
) -> None:
    world, pat, _ = smith
    doc_num = set_by_url(world, pat, url)
    before = row(world, doc_num)

    with capture_logs() as logs:
        summary = materializer(world).run_once()

    assert summary.materialised == []
    ((failed_doc, failed_reason),) = summary.failed
    assert failed_doc == doc_num
    assert failed_reason.startswith("refused: ")
    assert reason in failed_reason
    assert row(world, doc_num) == before
    (line,) = events(logs, "materialize.failed")
    assert line["docnum"] == doc_num
    assert reason in line["reason"]


def test_a_loopback_address_not_allow_listed_gets_no_request(
    smith: tuple[World, int, int],
) -> None:
    world, pat, _ = smith
    with serving({"/x.png": body(PNG, "image/png")}, host="127.0.0.2") as canary:
        doc_num = set_by_url(world, pat, canary.url("/x.png"))
        summary = materializer(world, allow_hosts=("127.0.0.1",)).run_once()
    ((failed, reason),) = summary.failed
    assert failed == doc_num
    assert reason.startswith("refused: ")
    assert "127.0.0.2 is a loopback address" in reason
    assert canary.requests == []
    assert row(world, doc_num)["Note"] == f"_download_:{canary.url('/x.png')}"


@pytest.mark.parametrize("target", ["canary", "intranet.test", "metadata.test"])
def test_a_redirect_to_a_refused_address_is_refused(
    smith: tuple[World, int, int], site: Site, target: str
) -> None:
    world, pat, _ = smith
    with serving({"/secret.png": body(b"internal")}, host="127.0.0.2") as canary:
        location = canary.url("/secret.png") if target == "canary" else f"http://{target}/s.png"
        site.routes["/go.png"] = redirect(location)
        doc_num = set_by_url(world, pat, site.url("/go.png"))

        summary = materializer(world).run_once()

    ((_, reason),) = summary.failed
    assert reason.startswith("refused: ")
    assert [path for path, _ in site.requests] == ["/go.png"]
    assert canary.requests == []
    assert row(world, doc_num)["FileName"] == ""


def test_redirects_are_followed_each_hop_checked_at_most_five(
    smith: tuple[World, int, int], site: Site
) -> None:
    world, pat, _ = smith
    for hop in range(MAX_REDIRECTS + 1):
        site.routes[f"/hop{hop}"] = redirect(f"/hop{hop + 1}", status=301 if hop % 2 else 307)
    site.routes[f"/hop{MAX_REDIRECTS}"] = redirect("/scans/pano.png")
    site.routes[f"/hop{MAX_REDIRECTS + 1}"] = redirect("/scans/pano.png")
    ok = set_by_url(world, pat, site.url("/hop1"))  # five redirects: followed
    too_many = set_by_url(world, pat, site.url("/hop0"))  # six: refused

    summary = materializer(world).run_once()

    assert summary.materialised == [(ok, f"SmithJohn{ok}.png")]  # extension of the final URL
    assert summary.failed == [
        (too_many, f"http_error: more than {MAX_REDIRECTS} redirects from {site.url('/hop0')}")
    ]


def test_the_extension_comes_from_the_content_type(
    smith: tuple[World, int, int], site: Site
) -> None:
    world, pat, _ = smith
    site.routes["/get.php"] = body(PNG, "image/png")
    doc_num = set_by_url(world, pat, site.url("/get.php?id=4"))

    materializer(world).run_once()

    assert row(world, doc_num)["FileName"] == f"SmithJohn{doc_num}.png"


def test_credentials_in_a_url_are_used_and_never_logged(
    smith: tuple[World, int, int], site: Site
) -> None:
    world, pat, _ = smith
    site.routes["/private.png"] = body(PNG, "image/png")
    url = f"http://scanner:s3cretpw@127.0.0.1:{site.port}/private.png?token=t0ken"
    doc_num = set_by_url(world, pat, url)
    missing = set_by_url(world, pat, url.replace("private.png", "missing.png"))

    with capture_logs() as logs:
        summary = materializer(world).run_once()

    assert [d for d, _ in summary.materialised] == [doc_num]
    assert site.authorizations[0] == "Basic " + base64.b64encode(b"scanner:s3cretpw").decode()
    assert summary.failed == [
        (missing, f"http_error: HTTP 404 from http://127.0.0.1:{site.port}/missing.png")
    ]
    logged = repr(logs) + repr(summary)
    assert "s3cretpw" not in logged
    assert "t0ken" not in logged


def test_rows_that_only_look_like_placeholders_are_left_alone(
    smith: tuple[World, int, int],
) -> None:
    world, pat, category = smith
    notes = [
        "Xdownload_:http://127.0.0.1/a.png",  # "_" is LIKE's wildcard: must not match
        "_Download_:http://127.0.0.1/a.png",  # MariaDB's LIKE ignores case; we do not
        "_download_:http://127.0.0.1/a.png",  # has a FileName: already materialised
    ]
    others = [
        world.add_document(pat, "", category, Note=notes[0]),
        world.add_document(pat, "", category, Note=notes[1]),
        world.add_document(pat, "done.png", category, Note=notes[2]),
    ]
    with world.engine.connect() as conn:
        listed = queries.placeholder_doc_nums(conn, after_doc_num=0, limit=10)
    assert others[0] not in listed
    assert others[2] not in listed

    summary = materializer(world).run_once()

    assert summary == Summary()
    assert [d["Note"] for d in world.documents()] == notes


# -- rawBase64 rows written by anyone --------------------------------------------------------


def test_the_thumbnail_job_is_handed_to_the_queue_it_was_given(
    smith: tuple[World, int, int], site: Site
) -> None:
    world, pat, _ = smith
    doc_num = set_by_url(world, pat, site.url("/scans/pano.png"))
    queued: list[ThumbJob] = []
    mat = Materializer(
        world.engine,
        LocalAtoZ(world.root),
        MaterializerSettings(allow_hosts=("127.0.0.1",)),
        on_stored=queued.append,
        resolver=RESOLVER,
    )

    summary = mat.run_once()

    folder = world.folder(f"SmithJohn{pat}")
    name = f"SmithJohn{doc_num}.png"
    (job,) = queued
    assert (job.source, job.dest) == (folder / name, folder / "Thumbnails" / name)
    assert (job.pat_num, job.doc_num, job.force) == (pat, doc_num, True)
    assert summary.materialised == [(doc_num, name)]
    assert summary.thumbnails == {}  # counted where the queue renders it
    assert not (folder / "Thumbnails").exists()


@pytest.mark.parametrize("storage_kind", ["LocalAtoZ", "InDatabase"])
def test_a_raw_base64_row_inserted_by_plain_sql_is_materialised(
    smith: tuple[World, int, int], storage_kind: str
) -> None:
    world, pat, category = smith
    note = "_rawBase64_:.png_" + base64.b64encode(PNG).decode()
    with world.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO document (PatNum, FileName, Description, DocCategory, DateCreated,"
                " Note, Signature, ToothNumbers, RawBase64, ImgType, IsFlipped, DegreesRotated,"
                " CropX, CropY, CropW, CropH, WindowingMin, WindowingMax, MountItemNum,"
                " Thumbnail, ExternalGUID, ExternalSource, ProvNum, IsCropOld,"
                " OcrResponseData, ImageCaptureType, PrintHeading, ChartLetterHash,"
                " ChartLetterStatus, UserNum, SigIsTopaz)"
                " VALUES (:p, '', 'Intraoral', :c, '2024-05-06 07:08:09', :n, '', '', '', 2,"
                " 0, 0, 0, 0, 0, 0, 0, 0, 0, '', '', '', 0, 0, '', 0, 0, '', 0, 0, 0)"
            )
            if world.kind == "mariadb-opendental"  # Open Dental's: every column, no defaults
            else text(
                # Our own schema: only the TEXT columns (no default possible) are required.
                "INSERT INTO document (PatNum, FileName, Description, DocCategory,"
                " DateCreated, Note, ImgType, Signature, RawBase64, Thumbnail,"
                " OcrResponseData) VALUES (:p, '', 'Intraoral', :c,"
                " '2024-05-06 07:08:09', :n, 2, '', '', '', '')"
            ),
            {"p": pat, "c": category, "n": note},
        )
    (doc_num,) = [d["DocNum"] for d in world.documents()]
    storage: Storage = InDatabase() if storage_kind == "InDatabase" else LocalAtoZ(world.root)

    summary = materializer(world, storage=storage).run_once()

    name = f"SmithJohn{doc_num}.png"
    assert summary.materialised == [(doc_num, name)]
    found = row(world, doc_num)
    assert (found["FileName"], found["Note"], found["ImgType"]) == (name, "", 2)
    assert found["Description"] == "Intraoral"
    folder = world.root / "S" / f"SmithJohn{pat}"
    if storage_kind == "InDatabase":
        assert base64.b64decode(found["RawBase64"]) == PNG
        assert not any(p.is_file() for p in world.root.rglob("*"))
        assert summary.thumbnails == {}
    else:
        assert (folder / name).read_bytes() == PNG
        assert (folder / "Thumbnails" / name).is_file()


# -- failures: retried with backoff, then given up, the row never lost ----------------------


def _fail_until_given_up(doc_num: int, clock: Clock, mat: Materializer, kind: Failure) -> Logs:
    """Run passes as the clock moves on; return the logs. max_attempts is 3."""
    with capture_logs() as logs:
        first = mat.run_once()
        assert [(d, r.split(":", 1)[0]) for d, r in first.failed] == [(doc_num, str(kind))]
        assert mat.attempts(doc_num) == 1
        # Not due yet: left for later, not tried.
        waiting = mat.run_once()
        assert (waiting.failed, waiting.waiting) == ([], 1)
        clock.advance(61)
        assert len(mat.run_once().failed) == 1
        clock.advance(60)  # the second delay is twice the first: still waiting
        assert mat.run_once().waiting == 1
        clock.advance(61)
        last = mat.run_once()
        assert last.gave_up == [doc_num]
        clock.advance(10**6)
        later = mat.run_once()
        assert (later.failed, later.given_up_before) == ([], 1)
    return logs


def test_giving_up_is_a_problem_in_the_activity_log_without_the_note(
    smith: tuple[World, int, int], tmp_path: Path
) -> None:
    world, pat, category = smith
    note = "_rawBase64_:.jpg_SECRETPAYLOAD@@@" + "QUJD" * 50
    doc_num = world.add_document(pat, "", category, Note=note)
    clock, log = Clock(), ActivityLog(tmp_path / "activity.sqlite3")
    since = datetime.now().replace(microsecond=0)
    mat = materializer(world, clock=clock, activity=log)

    _fail_until_given_up(doc_num, clock, mat, Failure.BAD_NOTE)

    (problem,) = log.problems_since(since)
    assert (problem.kind, problem.place) == ("materialize", f"DocNum {doc_num}")
    assert "after 3 attempts (bad_note)" in problem.reason
    assert "SECRETPAYLOAD" not in repr(problem)


def test_bad_base64_is_retried_then_given_up_and_the_row_kept(
    smith: tuple[World, int, int],
) -> None:
    world, pat, category = smith
    note = "_rawBase64_:.jpg_SECRETPAYLOAD@@@" + "QUJD" * 50
    doc_num = world.add_document(pat, "", category, Note=note)
    clock, outcomes = Clock(), Outcomes()
    mat = materializer(world, clock=clock, outcomes=outcomes)

    logs = _fail_until_given_up(doc_num, clock, mat, Failure.BAD_NOTE)

    (gave_up,) = events(logs, "materialize.gave_up")
    assert gave_up["docnum"] == doc_num
    assert "not valid base64" in gave_up["reason"]
    assert gave_up["log_level"] == "warning"
    assert "SECRETPAYLOAD" not in repr(logs)
    assert outcomes == ["bad_note", "bad_note", "bad_note", "gave_up"]
    assert row(world, doc_num)["Note"] == note
    assert len(world.documents()) == 1


@pytest.mark.parametrize("how", ["Content-Length", "streamed"])
def test_too_large_downloads_fail_then_give_up(
    smith: tuple[World, int, int], site: Site, how: str
) -> None:
    world, pat, _ = smith

    def streamed(handler: BaseHTTPRequestHandler) -> None:
        # No Content-Length (HTTP/1.0: the body ends when the connection closes).
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.end_headers()
        for _ in range(40):
            handler.wfile.write(b"x" * 1000)

    route: Route = body(PNG, "image/png") if how == "Content-Length" else streamed
    site.routes["/big.png"] = route
    doc_num = set_by_url(world, pat, site.url("/big.png"))
    clock = Clock()
    mat = materializer(world, clock=clock, max_download_bytes=len(PNG) // 2)

    logs = _fail_until_given_up(doc_num, clock, mat, Failure.TOO_LARGE)

    (gave_up,) = events(logs, "materialize.gave_up")
    expected = "Content-Length" if how == "Content-Length" else "download cut"
    assert expected in gave_up["reason"]
    assert gave_up["source"] == site.url("/big.png")
    assert row(world, doc_num)["FileName"] == ""
    assert not any(p.is_file() for p in world.root.rglob("*"))


def test_a_stalled_server_times_out(smith: tuple[World, int, int], site: Site) -> None:
    world, pat, _ = smith

    def stalled(handler: BaseHTTPRequestHandler) -> None:
        del handler
        site.release.wait(10)  # released at teardown

    site.routes["/slow.png"] = stalled
    doc_num = set_by_url(world, pat, site.url("/slow.png"))
    started = time.monotonic()

    summary = materializer(world, timeout=0.5).run_once()

    assert time.monotonic() - started < 5
    ((failed, reason),) = summary.failed
    assert failed == doc_num
    # The read timeout or the total deadline, whichever comes first: both are 0.5 s here.
    assert reason.startswith("timeout: ")
    assert site.url("/slow.png") in reason


def test_nothing_listens_is_a_network_failure(smith: tuple[World, int, int]) -> None:
    world, pat, _ = smith
    with serving() as gone:
        url = gone.url("/x.png")
    doc_num = set_by_url(world, pat, url)

    summary = materializer(world).run_once()

    ((failed, reason),) = summary.failed
    assert failed == doc_num
    assert reason.startswith("network: ConnectError")


def test_a_missing_patient_fails_without_losing_the_row(smith: tuple[World, int, int]) -> None:
    world, pat, category = smith
    doc_num = world.add_document(pat + 100, "", category, Note="_rawBase64_:.txt_aGVsbG8=")

    summary = materializer(world).run_once()

    assert summary.failed == [(doc_num, f"patient_missing: patient {pat + 100} not found")]
    assert row(world, doc_num)["Note"] == "_rawBase64_:.txt_aGVsbG8="


def test_an_unreachable_database_ends_the_pass_quietly() -> None:
    engine = make_engine("mysql+pymysql://root@127.0.0.1:1/none")
    try:
        with capture_logs() as logs:
            summary = Materializer(
                engine, InDatabase(), MaterializerSettings(), resolver=RESOLVER
            ).run_once()
    finally:
        engine.dispose()
    assert summary.database_error
    assert events(logs, "materialize.database_unavailable")


def test_many_rows_are_read_in_pages(smith: tuple[World, int, int]) -> None:
    world, pat, category = smith
    payload = base64.b64encode(b"letter").decode()
    doc_nums = [
        world.add_document(pat, "", category, Note=f"_rawBase64_:.txt_{payload}") for _ in range(45)
    ]

    summary = materializer(world).run_once()

    assert [d for d, _ in summary.materialised] == doc_nums
    assert all(d["Note"] == "" and d["FileName"] for d in world.documents())


# -- the command and the worker --------------------------------------------------------------


def test_run_materialize_prints_a_summary(smith: tuple[World, int, int], site: Site) -> None:
    world, pat, category = smith
    good = set_by_url(world, pat, site.url("/scans/pano.png"))
    bad = world.add_document(pat, "", category, Note="_rawBase64_:.jpg_@@")
    settings = Settings(
        atoz_path=world.root,
        database_url=world.url,
        state_dir=world.state,
        materializer=MaterializerSettings(allow_hosts=("127.0.0.1",)),
    )
    out = io.StringIO()

    code = run_materialize(
        Components.from_settings(settings, world.engine, inline_thumbnails=True), out
    )

    assert code == 1
    assert out.getvalue().splitlines() == [
        "materialised: 1",
        f"  DocNum {good} -> SmithJohn{good}.png",
        "thumbnails made: 1 of 1",
        "failed: 1",
        f"  DocNum {bad}: bad_note: the payload (2 characters) is not valid base64",
        "left for later: 0",
    ]
    out = io.StringIO()
    # a new pass tries it again
    assert (
        run_materialize(
            Components.from_settings(settings, world.engine, inline_thumbnails=True), out
        )
        == 1
    )
    assert "failed: 1" in out.getvalue()


def test_the_worker_materialises_rows_as_they_come_and_stops_promptly(
    smith: tuple[World, int, int],
) -> None:
    world, pat, category = smith
    worker = MaterializerWorker(materializer(world), interval=0.1)
    worker.start()
    try:
        doc_num = world.add_document(pat, "", category, Note="_rawBase64_:.txt_aGVsbG8=")
        wait_for(lambda: row(world, doc_num)["FileName"] != "")
    finally:
        started = time.monotonic()
        worker.close()
        assert time.monotonic() - started < JOIN_S
    assert (world.root / "S" / f"SmithJohn{pat}" / f"SmithJohn{doc_num}.txt").read_bytes() == (
        b"hello"
    )


def test_the_worker_is_off_at_interval_zero(bare_world: World) -> None:
    worker = MaterializerWorker(materializer(bare_world), interval=0)
    worker.start()
    worker.close()  # nothing to join; the thread-leak check would catch one


def test_wake_runs_a_pass_before_the_interval(smith: tuple[World, int, int]) -> None:
    world, pat, category = smith
    worker = MaterializerWorker(materializer(world), interval=3600)
    worker.start()
    try:
        doc_num = world.add_document(pat, "", category, Note="_rawBase64_:.txt_aGVsbG8=")
        worker.wake()
        wait_for(lambda: row(world, doc_num)["FileName"] != "")
    finally:
        worker.close()
