"""The browser harness itself (tests/support/browser.py), against a tiny page on loopback: it
drives Debian's chromium, waits with deadlines, saves a PDF instead of showing it, takes
screenshots, and leaves no chromium behind."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from tests.support import browser as harness
from tests.support import images
from tests.support.browser import Browser, open_browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Harness</title></head>
<body><main>
<h1>Harness</h1>
<label for="name">Name</label> <input id="name" name="name">
<button id="later" type="button">Later</button>
<a id="sheet" href="/sheet.pdf">Sheet</a>
<label>Kept <input id="wrapped" type="checkbox"></label>
<input type="hidden" name="csrf" value="x">
<img id="red" src="/red.png" alt="A red square">
<script>
document.getElementById("later").addEventListener("click", function () {
  setTimeout(function () {
    var p = document.createElement("p");
    p.id = "late";
    p.textContent = "Hello " + document.getElementById("name").value;
    document.querySelector("main").appendChild(p);
  }, 400);
});
</script>
</main></body></html>
"""


BAD = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bad</title></head>
<body><main><h1>Bad</h1>
<input id="bare" name="bare"> <select name="pick"><option>a</option></select> <button></button>
<div style="width: 2000px">wide</div>
</main></body></html>
"""


def _pdf() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(buffer, format="PDF")
    return buffer.getvalue()


SHEET = _pdf()
RED = images.png((40, 30), (220, 30, 30))


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/":
            body, kind = PAGE, "text/html; charset=utf-8"
        elif self.path == "/sheet.pdf":
            body, kind = SHEET, "application/pdf"
        elif self.path == "/bad":
            body, kind = BAD, "text/html; charset=utf-8"
        elif self.path == "/red.png":
            body, kind = RED, "image/png"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        del format, args


@contextmanager
def _site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="test-harness-site")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def site() -> Iterator[str]:
    with _site() as url:
        yield url


def test_it_drives_chromium_and_waits_for_what_comes_later(browser: Browser, site: str) -> None:
    browser.get(site + "/")
    assert browser.driver.capabilities["browserName"] in {"chrome", "chromium"}
    assert browser.script("return window.innerWidth") == harness.WIDTH
    browser.element("#name").send_keys("Ada")
    browser.element("#later").click()
    assert browser.elements("#late") == []  # not yet: it comes 0.4 s after the click
    assert browser.text_of("#late", timeout=5) == "Hello Ada"


def test_it_reads_a_drawn_picture_s_colour(browser: Browser, site: str) -> None:
    browser.get(site + "/")
    assert browser.pixel(browser.element("#red")) == (220, 30, 30)


def test_it_finds_the_controls_without_a_name(browser: Browser, site: str) -> None:
    browser.get(site + "/")
    assert browser.unnamed_controls() == []  # labels by for= and around, a button's text
    browser.get(site + "/bad")
    unnamed = browser.unnamed_controls()
    assert [html.split(" ")[0].split(">")[0] for html in unnamed] == [
        "<input",
        "<select",
        "<button",
    ]


def test_it_measures_how_far_a_page_scrolls_sideways(browser: Browser, site: str) -> None:
    browser.get(site + "/")
    assert browser.sideways_overflow() <= 0
    browser.get(site + "/bad")
    assert browser.sideways_overflow() == 2000 - harness.WIDTH + 8  # body's default margin


def test_a_wait_that_never_comes_fails_at_its_deadline(browser: Browser, site: str) -> None:
    browser.get(site + "/")
    with pytest.raises(pytest.fail.Exception, match=r"within 0\.5 s: a visible '#never'"):
        browser.element("#never", timeout=0.5)


def test_a_pdf_link_downloads_the_file(browser: Browser, site: str) -> None:
    browser.get(site + "/")
    browser.element("#sheet").click()
    saved = browser.download(".pdf")
    assert saved.parent == browser.downloads
    assert saved.read_bytes() == SHEET
    assert browser.driver.current_url == site + "/"  # saved, not opened in the viewer


def test_a_screenshot_is_a_png_of_the_window(browser: Browser, site: str, tmp_path: Path) -> None:
    browser.get(site + "/")
    shot = browser.save_screenshot(tmp_path / "shot.png")
    with Image.open(shot) as image:
        assert image.format == "PNG"
        assert image.width == harness.WIDTH


def test_the_browser_and_its_driver_are_gone_after_the_block(site: str, tmp_path: Path) -> None:
    profile = tmp_path / "chromium-profile"
    with open_browser(tmp_path) as opened:
        opened.get(site + "/")
        assert harness._processes_using(profile)  # chromium runs, under its own profile
        driver_process = opened.driver.service.process
    assert harness._processes_using(profile) == []
    assert driver_process.poll() is not None  # chromedriver ended and was reaped


def test_screenshots_are_named_after_the_test() -> None:
    nodeid = "tests/ui/browser/test_front_desk.py::test_today_shows[mariadb]"
    assert harness.artifact_name(nodeid) == "test_front_desk.test_today_shows[mariadb]"
    assert harness.artifact_name("tests/a.py::Test::test_b c/d") == "a.Test.test_b_c_d"


def test_the_artifact_folder_is_the_environment_s(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ATOZ_ARTIFACTS", str(tmp_path / "shots"))
    assert harness.artifact_dir() == tmp_path / "shots"
    assert (tmp_path / "shots").is_dir()


@pytest.mark.parametrize(("ci", "outcome"), [("", pytest.skip.Exception), ("true", None)])
def test_a_missing_browser_skips_except_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type | None
) -> None:
    monkeypatch.setattr(harness, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", ci)
    assert "no-chromium missing" in harness.why_no_browser()
    with pytest.raises(outcome or pytest.fail.Exception, match="no-chromium missing"):
        harness.require_browser()
