"""A real browser for the front-desk page's tests: Debian's chromium, driven by Selenium.

``browser`` (a pytest fixture) yields a :class:`Browser`: a headless chromium at 1280x900 whose
downloads go to the test's own folder (a PDF is saved, never shown), with waits that carry an
explicit deadline. At teardown it saves a screenshot named after the test into the artifact
folder (``$ATOZ_ARTIFACTS``, else ``<repo>/.artifacts/ui/``), quits, and makes sure neither the
driver nor any chromium process it started is left running (a test that leaves one fails).

Only Debian's binaries are used: ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` are named
outright, so Selenium Manager has nothing to look up and never downloads a driver or a browser
(``SE_OFFLINE`` is set as well, for the day a Selenium release asks it anyway). Where they are
missing the browser tests are skipped, except under CI (CI=true), where that is a failure:
``.ci/run`` installs chromium and chromium-driver.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.waiting import wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH, HEIGHT = 1280, 900
WAIT_S = 10.0  # a page, a redirect, an element: loopback and a local server
START_S = 60.0  # chromium's first start on a loaded 2-core machine
QUIT_S = 15.0
REPO = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def why_no_browser() -> str:
    """Why the browser tests cannot run here ("" when they can)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return f"{' and '.join(missing)} missing (apt-get install chromium chromium-driver)"
    return ""


def require_browser() -> None:
    """Skip (or, under CI, fail) when Debian's chromium or its driver is not installed."""
    if problem := why_no_browser():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; CI must run the browser tests (.ci/run installs them)")
        pytest.skip(problem)


def artifact_dir() -> Path:
    """Where screenshots go: ``$ATOZ_ARTIFACTS`` or ``<repo>/.artifacts/ui/`` (git-ignored)."""
    folder = Path(os.environ.get("ATOZ_ARTIFACTS") or REPO / ".artifacts" / "ui")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def artifact_name(nodeid: str) -> str:
    """``tests/ui/browser/test_x.py::test_y[sqlite]`` -> ``test_x.test_y[sqlite]``."""
    path, _, test = nodeid.partition("::")
    module = path.rpartition("/")[2]
    name = f"{module.removesuffix('.py')}.{test.replace('::', '.')}"
    return re.sub(r"[^A-Za-z0-9._\[\]-]+", "_", name)


def chromium_options(profile: Path, downloads: Path) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the suite runs as root, where chromium's sandbox refuses to start
        "--disable-dev-shm-usage",  # a container's /dev/shm is small: use /tmp
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={profile}",  # its own profile: also how its processes are found
        # Nothing leaves the machine: no component updates, sync, metrics or first-run pages.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-features=Translate,OptimizationHints,MediaRouter",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "download.directory_upgrade": True,
            "plugins.always_open_pdf_externally": True,  # save a PDF, never open the viewer
            "credentials_enable_service": False,
            "profile.password_manager_enabled": False,
        },
    )
    return options


def _processes_using(profile: Path) -> list[int]:
    """The pids of the processes whose command line names ``profile`` (our chromium's)."""
    marker = f"--user-data-dir={profile}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # it ended while we looked
            continue
        if marker in cmdline.split(b"\0"):
            pids.append(int(entry.name))
    return pids


_UNNAMED_CONTROLS = """
const unnamed = [];
for (const el of document.querySelectorAll("input, select, textarea, button")) {
  if (el.type === "hidden") continue;
  const byFor = el.id ? document.querySelector(`label[for="${CSS.escape(el.id)}"]`) : null;
  const around = el.closest("label");
  const labelled = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
    .map((id) => (document.getElementById(id) || {}).textContent || "").join("");
  const names = [
    byFor && byFor.textContent, around && around.textContent,
    el.getAttribute("aria-label"), labelled, el.tagName === "BUTTON" && el.textContent,
  ];
  if (!names.some((n) => n && n.trim())) unnamed.push(el.outerHTML.slice(0, 120));
}
return unnamed;
"""
_MIDDLE_PIXEL = """
const img = arguments[0];
const canvas = document.createElement("canvas");
canvas.width = img.naturalWidth;
canvas.height = img.naturalHeight;
const context = canvas.getContext("2d");
context.drawImage(img, 0, 0);
const data = context.getImageData(img.naturalWidth >> 1, img.naturalHeight >> 1, 1, 1).data;
return [data[0], data[1], data[2]];
"""


@dataclass
class Browser:
    """A WebDriver with the waits the tests use; every wait has a deadline."""

    driver: webdriver.Chrome
    downloads: Path

    def get(self, url: str) -> None:
        self.driver.get(url)

    def until(
        self, condition: Callable[[WebDriver], T | None], *, timeout: float = WAIT_S, what: str
    ) -> T:
        """``condition`` polled (every 50 ms) until it returns something truthy; fail at the
        deadline, saying ``what`` was awaited."""
        wait = WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.05,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        )
        try:
            result = wait.until(condition)
        except TimeoutException:
            pytest.fail(f"within {timeout} s: {what} (at {self.driver.current_url})")
        assert result is not None
        return result

    def element(self, css: str, *, timeout: float = WAIT_S) -> WebElement:
        """The first visible element matching ``css``, once there is one."""

        def shown(driver: WebDriver) -> WebElement | None:
            found = driver.find_elements(By.CSS_SELECTOR, css)
            return next((e for e in found if e.is_displayed()), None)

        return self.until(shown, timeout=timeout, what=f"a visible {css!r}")

    def elements(self, css: str) -> list[WebElement]:
        """Whatever matches ``css`` now (no wait)."""
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text_of(self, css: str, *, timeout: float = WAIT_S) -> str:
        return str(self.element(css, timeout=timeout).text)

    def at(self, path: str, *, timeout: float = WAIT_S) -> str:
        """Wait until the page's URL path (without the query) is ``path``; the whole URL."""

        def arrived(driver: WebDriver) -> str | None:
            url = str(driver.current_url)
            return url if urlsplit(url).path == path else None

        return self.until(arrived, timeout=timeout, what=f"the page {path}")

    def script(self, source: str, *args: object) -> object:
        return self.driver.execute_script(source, *args)

    def unnamed_controls(self) -> list[str]:
        """The inputs, selects, textareas and buttons of the page that have no accessible
        name (a label by ``for`` or around it, ``aria-label``/``aria-labelledby``, or a
        button's text), each as the start of its HTML; hidden inputs are not controls."""
        found = self.script(_UNNAMED_CONTROLS)
        assert isinstance(found, list)
        return [str(each) for each in found]

    def sideways_overflow(self) -> int:
        """How many CSS pixels the page is wider than the window (<= 0: no sideways scroll)."""
        wider = self.script("return document.documentElement.scrollWidth - window.innerWidth")
        assert isinstance(wider, int)
        return wider

    def pixel(self, image: WebElement) -> tuple[int, int, int]:
        """The colour at the middle of a drawn ``<img>`` (same origin), as the browser
        decoded it: what the picture is, not just that there is one."""
        rgb = self.script(_MIDDLE_PIXEL, image)
        assert isinstance(rgb, list)
        red, green, blue = (int(c) for c in rgb)
        return red, green, blue

    def download(self, suffix: str, *, timeout: float = WAIT_S) -> Path:
        """The one finished download ending in ``suffix`` (chromium writes ``.crdownload``
        first and renames it when the last byte is in)."""

        def finished() -> bool:
            names = [p.name for p in self.downloads.iterdir()]
            return not any(n.endswith(".crdownload") for n in names) and any(
                n.endswith(suffix) for n in names
            )

        wait_for(finished, timeout=timeout)
        (path,) = [p for p in self.downloads.iterdir() if p.name.endswith(suffix)]
        return path

    def save_screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.driver.save_screenshot(str(path)):
            pytest.fail(f"chromium saved no screenshot to {path}")
        return path


@contextmanager
def open_browser(folder: Path) -> Iterator[Browser]:
    """A headless chromium with its profile and downloads under ``folder``; quit when the block
    ends, its driver and every chromium process gone (killed, and the test failed, if not)."""
    require_browser()
    profile, downloads = folder / "chromium-profile", folder / "downloads"
    profile.mkdir(parents=True)
    downloads.mkdir(parents=True)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, if ever asked, must not download
    service = Service(str(CHROMEDRIVER), log_output=subprocess.DEVNULL)
    try:
        driver = webdriver.Chrome(options=chromium_options(profile, downloads), service=service)
    except WebDriverException as exc:
        service.stop()
        _end_chromium(profile)
        pytest.fail(f"chromium did not start: {exc.msg}")
    driver.set_page_load_timeout(START_S)
    try:
        yield Browser(driver=driver, downloads=downloads)
    finally:
        try:
            driver.quit()  # ends chromium through its driver, then stops the driver
        finally:
            _end_chromium(profile)


def _end_chromium(profile: Path) -> None:
    """A driver that hung or died leaves its chromium orphaned: give the profile's processes
    ``QUIT_S`` to end, then kill them by pid and fail the test."""
    deadline = time.monotonic() + QUIT_S
    while (left := _processes_using(profile)) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling /proc: nothing to wait on for processes not our children
    if left:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pytest.fail(f"chromium processes left running after quit (killed): {left}")


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    """A browser for one test; its last screen saved as ``<module>.<test>.png`` in the
    artifact folder, whatever the outcome."""
    with open_browser(tmp_path / "browser") as opened:
        try:
            yield opened
        finally:
            with contextlib.suppress(WebDriverException):  # a dead browser: nothing to save
                opened.save_screenshot(artifact_dir() / f"{artifact_name(request.node.nodeid)}.png")
