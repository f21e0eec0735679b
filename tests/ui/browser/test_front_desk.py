"""The front-desk page in a real browser, against a live `atoz-watcher run` on SQLite and on
MariaDB: what the front desk does with it (log in, watch Today, file an unmatched scan, print a
cover sheet whose scan then files itself), what it refuses, and whether it can be used by
keyboard alone and at 640 px.

One `run` per database for the module (tests/support/front_desk.py); each test works with its
own patients and files, so the tests do not depend on each other or on their order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.support.browser import Browser, require_browser
from tests.support.front_desk import (
    STAFF,
    STAFF_PASSWORD,
    FrontDesk,
    front_desk,
)
from tests.support.worlds import make_world

pytestmark = [pytest.mark.browser, pytest.mark.process, pytest.mark.timeout(180)]

TODAY_S = 2.0  # a file closed in a patient folder is on Today within this, without a reload
FILED_S = 30.0  # the inbox routes and files a scan (split, code read, stored)
DPI = 150


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
