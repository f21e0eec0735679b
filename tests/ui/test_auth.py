"""Logging in to the page: who gets in, who does not, how often one may try, what is logged."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.ratelimit import LoginLimiter
from atoz_watcher.ui.sessions import COOKIE
from atoz_watcher.ui.web import LoggedIn, PostedForm, StaffOnly, Web, safe_next
from tests.support.api import AUTH
from tests.support.ui import STAFF, VIEWER, UiSite, csrf_of, login, serving_ui, ui_settings
from tests.support.worlds import World, make_world

WRONG = "Wrong name or password."
WINDOW_S = 15 * 60


def probe_pages(parts: UiParts, web: Web) -> APIRouter:
    """A page anyone logged in sees, and a form only staff may post."""
    del parts
    routes = APIRouter()

    @routes.get("/probe", response_class=HTMLResponse)
    async def probe(request: Request, viewer: LoggedIn) -> HTMLResponse:
        return web.page(request, viewer, "base.html", title="Probe")

    @routes.post("/probe/move", response_class=HTMLResponse)
    async def move(request: Request, viewer: StaffOnly, _form: PostedForm) -> HTMLResponse:
        return web.page(request, viewer, "base.html", title="Moved")

    return routes


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    # Logging in reads no database: one kind is enough (test_shell.py runs both).
    yield from make_world("sqlite", tmp_path)


@pytest.fixture
def site(sqlite_world: World) -> Iterator[UiSite]:
    with serving_ui(sqlite_world, ui=ui_settings(login_attempts=3), routers=[probe_pages]) as site:
        yield site


def from_address(site: UiSite, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any of 127.0.0.0/8 reaches lo)."""
    return site.client(transport=httpx.HTTPTransport(local_address=address))


def alert(html: str) -> str:
    found = re.search(r'<p role="alert">([^<]*)</p>', html)
    assert found is not None, html
    return found.group(1)


def test_the_right_password_logs_in_and_goes_home(site: UiSite) -> None:
    with site.client() as client:
        response = login(client, STAFF.name, STAFF.password)

        assert response.status_code == 303
        assert response.headers["location"] == "/ui/"
        assert client.get("/ui/probe").status_code == 200


def test_a_wrong_password_is_401_with_an_alert_and_no_session(site: UiSite) -> None:
    with site.client() as client:
        response = login(client, STAFF.name, VIEWER.password)

        assert response.status_code == 401
        assert alert(response.text) == WRONG
        assert COOKIE not in response.cookies
        assert client.get("/ui/probe").status_code == 303
        # Nothing typed comes back (a password typed in the name box would).
        assert STAFF.name not in response.text
        assert VIEWER.password not in response.text


def test_an_unknown_name_gets_the_same_answer_as_a_wrong_password(site: UiSite) -> None:
    with site.client() as client:
        unknown = login(client, "nobody-here", STAFF.password)
        wrong = login(client, STAFF.name, "not-the-password")

    assert unknown.status_code == wrong.status_code == 401
    assert alert(unknown.text) == alert(wrong.text) == WRONG
    assert COOKIE not in unknown.cookies


def test_a_viewer_logs_in_but_may_not_move(site: UiSite) -> None:
    with site.logged_in(VIEWER) as client:
        page = client.get("/ui/probe")
        assert page.status_code == 200
        assert "(may look)" in page.text

        refused = client.post("/ui/probe/move", data={"csrf": csrf_of(page.text)})

        assert refused.status_code == 403
        assert alert(refused.text) == "Your account may look but not move files."
    with site.logged_in(STAFF) as client:
        page = client.get("/ui/probe")
        moved = client.post("/ui/probe/move", data={"csrf": csrf_of(page.text)})
        assert moved.status_code == 200
        assert "<h1>Moved</h1>" in moved.text


def test_failures_for_one_name_lock_that_name_from_any_address(site: UiSite) -> None:
    with from_address(site, "127.0.0.2") as guesser:
        for _ in range(3):
            assert login(guesser, STAFF.name, "guess-" + "x" * 8).status_code == 401
    with from_address(site, "127.0.0.3") as other:
        locked = login(other, STAFF.name, STAFF.password)

        assert locked.status_code == 429
        assert alert(locked.text).startswith("Too many attempts")
        assert 0 < int(locked.headers["retry-after"]) <= WINDOW_S
        assert COOKIE not in locked.cookies
        # Another name from that address is not held up.
        assert login(other, VIEWER.name, VIEWER.password).status_code == 303


def test_failures_from_one_address_lock_that_address_for_every_name(site: UiSite) -> None:
    with from_address(site, "127.0.0.4") as guesser:
        for name in ("alice-x", "bob-x", "carol-x"):
            assert login(guesser, name, "guess-" + "x" * 8).status_code == 401

        locked = login(guesser, VIEWER.name, VIEWER.password)
        assert locked.status_code == 429
        assert alert(locked.text).startswith("Too many attempts")
    with from_address(site, "127.0.0.5") as elsewhere:
        assert login(elsewhere, VIEWER.name, VIEWER.password).status_code == 303


def test_a_lock_ends_when_the_window_has_passed(site: UiSite) -> None:
    with site.client() as client:
        for _ in range(3):
            assert login(client, STAFF.name, "guess-" + "x" * 8).status_code == 401
        locked = login(client, STAFF.name, STAFF.password)
        assert locked.status_code == 429

        site.clock.advance(int(locked.headers["retry-after"]) - 2)
        assert login(client, STAFF.name, STAFF.password).status_code == 429
        site.clock.advance(2)
        assert login(client, STAFF.name, STAFF.password).status_code == 303


def test_the_login_form_needs_its_own_token(site: UiSite) -> None:
    with site.client() as client:
        page = client.get("/ui/login")
        fields = {"username": STAFF.name, "password": STAFF.password, "next": ""}

        missing = client.post("/ui/login", data=fields)
        wrong = client.post("/ui/login", data=fields | {"csrf": "forged-token-value"})
        client.cookies.clear()
        no_cookie = client.post("/ui/login", data=fields | {"csrf": csrf_of(page.text)})

    for refused in (missing, wrong, no_cookie):
        assert refused.status_code == 403
        assert alert(refused.text) == "This form has expired: reload the page and try again."
        assert COOKIE not in refused.cookies


def test_an_api_key_never_logs_anyone_in(site: UiSite) -> None:
    with site.client(headers=AUTH) as client:
        page = client.get("/ui/probe")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/ui/login")
        forged = {"Authorization": f"ODFHIR {STAFF.name}/{STAFF.password}"}
        assert client.get("/ui/probe", headers=forged).status_code == 303


def test_the_api_still_needs_its_keys_and_the_page_does_not_take_them(site: UiSite) -> None:
    with site.client() as client:
        assert client.get("/api/v1/documents", params={"PatNum": 1}).status_code == 401
        with_key = client.get("/api/v1/documents", params={"PatNum": 1}, headers=AUTH)
        assert with_key.status_code != 401
        assert client.get("/ui/login").status_code == 200
        # A UI session opens nothing of the API.
        assert login(client, STAFF.name, STAFF.password).status_code == 303
        assert client.get("/api/v1/documents", params={"PatNum": 1}).status_code == 401


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/ui/probe", "/ui/probe"),
        ("/ui/patients?q=Smith", "/ui/patients?q=Smith"),
        ("", "/ui/"),
        ("https://evil.example/ui/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/ui//evil.example", "/ui/"),
        ("/ui/../api/v1/documents", "/ui/"),
        ("/ui/\\evil.example", "/ui/"),
        ("/api/v1/documents", "/ui/"),
        ("/uix", "/ui/"),
    ],
)
def test_after_login_only_a_page_of_the_ui(site: UiSite, target: str, landing: str) -> None:
    with site.client() as client:
        response = login(client, STAFF.name, STAFF.password, next_path=target)

    assert response.status_code == 303
    assert response.headers["location"] == landing


def test_a_page_asked_for_before_login_is_where_login_leads(site: UiSite) -> None:
    with site.client() as client:
        asked = client.get("/ui/probe", params={"tab": "2"})
        assert asked.status_code == 303
        assert asked.headers["location"] == "/ui/login?next=/ui/probe%3Ftab%3D2"

        page = client.get(asked.headers["location"])
        assert 'name="next" value="/ui/probe?tab=2"' in page.text
        done = client.post(
            "/ui/login",
            data={
                "username": STAFF.name,
                "password": STAFF.password,
                "csrf": csrf_of(page.text),
                "next": "/ui/probe?tab=2",
            },
        )
        assert done.headers["location"] == "/ui/probe?tab=2"


def test_no_password_session_or_token_reaches_the_log(site: UiSite) -> None:
    with structlog.testing.capture_logs() as events, site.client() as client:
        login(client, STAFF.name, VIEWER.password)  # refused
        login(client, VIEWER.password, STAFF.password)  # a password typed as the name
        assert login(client, STAFF.name, STAFF.password).status_code == 303
        session = client.cookies[COOKIE]
        page = client.get("/ui/probe")
        csrf = csrf_of(page.text)
        client.post("/ui/logout", data={"csrf": csrf})

    logged = repr(events)
    assert any(event["event"] == "ui.login" for event in events)
    assert any(event["event"] == "ui.login_refused" for event in events)
    for secret in (STAFF.password, VIEWER.password, session, session.split(".")[0], csrf):
        assert secret not in logged


class TestLoginLimiter:
    """The sliding window on its own, with plain values."""

    def test_counts_each_name_and_each_address(self) -> None:
        now = [0.0]
        limiter = LoginLimiter(attempts=2, window_s=60, clock=lambda: now[0])
        limiter.failed("Anna", "10.0.0.1")
        assert limiter.retry_after("anna", "10.0.0.9") is None
        limiter.failed(" ANNA ", "10.0.0.2")

        assert limiter.retry_after("anna", "10.0.0.9") == 60
        assert limiter.retry_after("ben", "10.0.0.1") is None
        limiter.failed("ben", "10.0.0.1")
        assert limiter.retry_after("carl", "10.0.0.1") == 60

    def test_the_window_slides(self) -> None:
        now = [0.0]
        limiter = LoginLimiter(attempts=2, window_s=60, clock=lambda: now[0])
        limiter.failed("anna", "a")
        now[0] = 30.0
        limiter.failed("anna", "b")
        assert limiter.retry_after("anna", "c") == 30
        now[0] = 60.0
        assert limiter.retry_after("anna", "c") is None  # the first failure left the window
        limiter.failed("anna", "d")
        assert limiter.retry_after("anna", "c") == 30

    def test_a_success_clears_the_name_not_the_address(self) -> None:
        limiter = LoginLimiter(attempts=1, window_s=60, clock=lambda: 0.0)
        limiter.failed("anna", "10.0.0.1")
        limiter.succeeded("anna")
        assert limiter.retry_after("anna", "10.0.0.2") is None
        assert limiter.retry_after("anna", "10.0.0.1") == 60


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/", "/ui/"),
        ("/ui/inbox?done=1", "/ui/inbox?done=1"),
        (None, "/ui/"),
        ("/ui/./x", "/ui/"),
        ("/ui/x\r\nSet-Cookie: a=b", "/ui/"),
        ("javascript:alert(1)", "/ui/"),
        ("/ui", "/ui/"),
    ],
)
def test_safe_next(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected
