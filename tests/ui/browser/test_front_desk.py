"""The front-desk page in a real browser, against a live `atoz-watcher run` on SQLite and on
MariaDB: what the front desk does with it (log in, watch Today, file an unmatched scan, print a
cover sheet whose scan then files itself), what it refuses, and whether it can be used by
keyboard alone and at 640 px.

One `run` per database for the module (tests/support/front_desk.py); each test works with its
own patients and files, so the tests do not depend on each other or on their order.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from atoz_watcher.imaging.pages import iter_pages
from tests.support import images, scans
from tests.support.browser import Browser, require_browser
from tests.support.front_desk import (
    STAFF,
    STAFF_PASSWORD,
    VIEWER,
    VIEWER_PASSWORD,
    FrontDesk,
    Patient,
    front_desk,
)
from tests.support.waiting import wait_for
from tests.support.worlds import make_world

pytestmark = [pytest.mark.browser, pytest.mark.process, pytest.mark.timeout(180)]

TODAY_S = 2.0  # a file closed in a patient folder is on Today within this, without a reload
FILED_S = 30.0  # the inbox routes and files a scan (split, code read, stored)
DPI = 150
TEAL = (20, 150, 160)


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FrontDesk]:
    require_browser()
    folder = tmp_path_factory.mktemp(f"desk-{request.param}")
    with (
        contextmanager(make_world)(request.param, folder) as world,
        front_desk(world, folder) as live,
    ):
        yield live


def log_in(
    browser: Browser, desk: FrontDesk, name: str = STAFF, password: str = STAFF_PASSWORD
) -> None:
    """Through the form, as a person does; lands on Today."""
    browser.get(desk.page("/ui/"))
    browser.at("/ui/login")
    browser.element("#username").send_keys(name)
    browser.element("#password").send_keys(password)
    browser.element("#login button[type=submit]").click()
    browser.at("/ui/")
    assert browser.text_of("main h1") == "Today"


def alert(browser: Browser) -> str:
    return browser.text_of('[role="alert"]')


# --- what the front desk does ---------------------------------------------------------------


def test_logging_in_through_the_form_lands_on_today(browser: Browser, desk: FrontDesk) -> None:
    browser.get(desk.page("/ui/inbox"))
    url = browser.at("/ui/login")
    assert "next=" in url  # back to the page asked for, once logged in
    browser.element("#username").send_keys(STAFF)
    browser.element("#password").send_keys(STAFF_PASSWORD)
    browser.element("#login button[type=submit]").click()
    browser.at("/ui/inbox")
    assert STAFF in browser.text_of('nav[aria-label="Main"]')
    cookie = browser.driver.get_cookie("atoz_ui")
    assert cookie is not None
    assert cookie["httpOnly"] is True


def test_a_file_dropped_in_a_patient_folder_is_on_today_within_2_s(
    browser: Browser, desk: FrontDesk
) -> None:
    patient = desk.add_patient("Okafor", "Ngozi")
    log_in(browser, desk)
    with (patient.folder / "bitewing-left.jpg").open("wb") as handle:
        handle.write(images.jpeg((640, 480), TEAL))
    closed = time.monotonic()

    def row(driver: object) -> WebElement | None:
        del driver
        for tr in browser.elements("#today tbody tr[data-docnum]"):
            if tr.find_element(By.CSS_SELECTOR, "td.file").text == "bitewing-left.jpg":
                return tr
        return None

    found = browser.until(
        row, timeout=max(0.0, TODAY_S - (time.monotonic() - closed)), what="the new row on Today"
    )
    assert found.find_element(By.CSS_SELECTOR, "td.patient").text == patient.name
    assert found.find_element(By.CSS_SELECTOR, "td.how").text == "Patient folder"
    (document,) = desk.world.documents(patient.pat_num)
    assert found.get_attribute("data-docnum") == str(document["DocNum"])
    thumb = found.find_element(By.CSS_SELECTOR, "img.thumb")
    drawn = "return arguments[0].complete && arguments[0].naturalWidth > 0"
    browser.until(lambda _: browser.script(drawn, thumb), what="the row's thumbnail drawn")
    # The file's own picture, not a placeholder: its colour, give or take JPEG's rounding.
    assert all(abs(a - b) <= 12 for a, b in zip(browser.pixel(thumb), TEAL, strict=True))


def _unmatched_scan(desk: FrontDesk, name: str, pages: list[int]) -> Path:
    """A scan with no cover sheet and no name token, dropped into the inbox; waited for in
    _Unmatched/."""
    work = desk.inbox.parent / f"scanner-{name}"
    scans.write_pdf(scans.batch_pages(pages, dpi=DPI), work, dpi=DPI)
    shutil.move(work, desk.inbox / name)
    landed = desk.unmatched() / name
    wait_for(landed.exists, timeout=FILED_S)
    return landed


def test_an_unmatched_scan_is_filed_to_a_patient_from_the_inbox_page(
    browser: Browser, desk: FrontDesk
) -> None:
    patient = desk.add_patient("Haddad", "Samira")
    desk.add_patient("Haddock", "Simon")  # a near name, also offered: the radio picks
    landed = _unmatched_scan(desk, "scan-haddad.pdf", [1, 2])
    log_in(browser, desk)
    browser.get(desk.page("/ui/inbox"))
    row = browser.element('#unmatched tr[data-file="0/scan-haddad.pdf"]')
    row.find_element(By.CSS_SELECTOR, "a.open").click()
    browser.at("/ui/inbox/file")
    browser.element("#q").send_keys("Haddad", Keys.ENTER)
    browser.element(f"#pat-{patient.pat_num}").click()
    Select(browser.element("#category")).select_by_visible_text("Forms")
    browser.element("#assign button[type=submit]").click()
    browser.at("/ui/inbox")
    assert browser.text_of('[role="status"]') == f"Filed scan-haddad.pdf to {patient.name}."
    assert not landed.exists()
    (document,) = desk.world.documents(patient.pat_num)
    assert document["DocCategory"] == desk.categories["Forms"]
    assert (patient.folder / document["FileName"]).is_file()
    assert browser.elements('#unmatched tr[data-file="0/scan-haddad.pdf"]') == []


def test_a_cover_sheet_printed_from_the_patient_page_files_its_scan(
    browser: Browser, desk: FrontDesk, tmp_path: Path
) -> None:
    patient = desk.add_patient("Lindqvist", "Maja")
    log_in(browser, desk)
    browser.get(desk.page(f"/ui/patients/{patient.pat_num}"))
    assert browser.text_of("main h1") == f"{patient.name} (PatNum {patient.pat_num})"
    Select(browser.element("#cover-category")).select_by_visible_text("X-Rays")
    Select(browser.element("#paper")).select_by_value("a4")
    browser.element("#cover-sheet button[type=submit]").click()
    sheet = browser.download(".pdf")
    assert sheet.name == f"cover-sheet-{patient.pat_num}.pdf"
    # Printed, stacked in front of a page, scanned: the sheet rendered back at a scanner's dpi.
    (cover,) = [page.convert("RGB") for page in iter_pages(sheet, dpi=DPI)]
    batch = tmp_path / "batch.pdf"
    scans.write_pdf([cover, scans.content_page(1, dpi=DPI)], batch, dpi=DPI)
    shutil.move(batch, desk.inbox / "batch-lindqvist.pdf")
    wait_for(lambda: bool(desk.world.documents(patient.pat_num)), timeout=FILED_S)
    (document,) = desk.world.documents(patient.pat_num)
    assert document["DocCategory"] == desk.categories["X-Rays"]
    browser.get(desk.page("/ui/"))
    row = browser.element(f'#today tr[data-docnum="{document["DocNum"]}"]')
    assert row.find_element(By.CSS_SELECTOR, "td.how").text == "Inbox: cover sheet"


# --- what it refuses ------------------------------------------------------------------------


def test_a_wrong_password_is_refused_with_an_alert(browser: Browser, desk: FrontDesk) -> None:
    browser.get(desk.page("/ui/login"))
    browser.element("#username").send_keys(STAFF)
    browser.element("#password").send_keys("not-the-PASSWORD")
    browser.element("#login button[type=submit]").click()
    assert alert(browser) == "Wrong name or password."
    browser.at("/ui/login")
    assert browser.driver.get_cookie("atoz_ui") is None


def test_a_form_posted_without_its_csrf_token_is_refused(browser: Browser, desk: FrontDesk) -> None:
    log_in(browser, desk)
    browser.script('document.querySelector("#logout input[name=csrf]").remove()')
    browser.element("#logout button").click()
    assert alert(browser) == "This form has expired: reload the page and try again."
    browser.get(desk.page("/ui/"))  # still logged in: the forged logout did nothing
    browser.at("/ui/")
    assert browser.text_of("main h1") == "Today"


def test_a_viewer_may_look_but_not_file(browser: Browser, desk: FrontDesk) -> None:
    patient = desk.add_patient("Moreau", "Luc")
    landed = _unmatched_scan(desk, "scan-moreau.pdf", [3])
    log_in(browser, desk, VIEWER, VIEWER_PASSWORD)
    browser.get(desk.page("/ui/inbox/file?file=0/scan-moreau.pdf&q=Moreau"))
    browser.element(f"#pat-{patient.pat_num}").click()
    browser.element("#assign button[type=submit]").click()
    assert alert(browser) == "Your account may look but not move files."
    assert landed.exists()
    assert desk.world.documents(patient.pat_num) == []


# --- accessibility --------------------------------------------------------------------------


def _pages(patient: Patient) -> list[str]:
    return [
        "/ui/",
        "/ui/inbox",
        "/ui/inbox/file?file=0/scan-access.pdf&q=Ibarra",
        "/ui/patients?q=Ibarra",
        f"/ui/patients/{patient.pat_num}",
        "/ui/health",
    ]


def test_every_control_has_a_name_and_nothing_scrolls_sideways_at_640_px(
    browser: Browser, desk: FrontDesk
) -> None:
    patient = desk.add_patient("Ibarra", "Tomas")
    (patient.folder / "panoramic.jpg").write_bytes(images.jpeg((900, 450)))
    wait_for(lambda: bool(desk.world.documents(patient.pat_num)), timeout=FILED_S)
    _unmatched_scan(desk, "scan-access.pdf", [4])
    browser.driver.set_window_size(640, 900)
    browser.until(lambda _: browser.script("return window.innerWidth <= 640"), what="640 px")
    for path in ["/ui/login", *_pages(patient)]:
        if path == "/ui/":
            log_in(browser, desk)
        browser.get(desk.page(path))
        browser.element("main h1")
        assert browser.unnamed_controls() == [], path
        assert browser.sideways_overflow() <= 0, f"{path} scrolls sideways at 640 px"


def test_the_login_form_works_by_keyboard_alone(browser: Browser, desk: FrontDesk) -> None:
    browser.get(desk.page("/ui/login"))
    browser.element("#login")
    keys = ActionChains(browser.driver)
    reached = [str(browser.driver.switch_to.active_element.get_attribute("id"))]  # autofocus?
    for _ in range(10):  # the skip link and the form come first: a handful of stops at most
        if reached[-1] == "username":
            break
        keys.send_keys(Keys.TAB).perform()
        reached.append(str(browser.driver.switch_to.active_element.get_attribute("id")))
    assert reached[-1] == "username", f"Tab went {reached}"
    keys.send_keys(STAFF, Keys.TAB).perform()
    assert browser.driver.switch_to.active_element.get_attribute("id") == "password"
    keys.send_keys(STAFF_PASSWORD, Keys.ENTER).perform()
    browser.at("/ui/")
    assert browser.text_of("main h1") == "Today"


def test_an_idle_session_ends_and_lands_on_the_login_page(browser: Browser, tmp_path: Path) -> None:
    idle_minutes = 0.05  # 3 s
    # Sessions live in the process's memory, not the database: one database is enough.
    with (
        contextmanager(make_world)("sqlite", tmp_path) as world,
        front_desk(world, tmp_path, session_idle_minutes=idle_minutes) as short,
    ):
        log_in(browser, short)
        browser.get(short.page("/ui/health"))  # a page that does not poll
        ended = time.monotonic() + idle_minutes * 60 + 0.5
        # Nothing to wait on but the clock: the session ends when it has not been used
        # for session_idle_minutes; poll the clock (not the page, which would use it).
        browser.until(
            lambda _: time.monotonic() > ended,
            timeout=idle_minutes * 60 + 10,
            what="the session's idle time passed",
        )
        browser.element('nav[aria-label="Main"] a[href="/ui/"]').click()
        url = browser.at("/ui/login")
        assert "expired=1" in url
        assert alert(browser).startswith("Your session ended")
