"""Sessions: the cookie's flags, a tampered cookie, the idle timeout, CSRF, logout."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoz_watcher.ui.sessions import COOKIE, LOGIN_TOKEN_S, Ended, LoginTokens, SessionStore
from tests.support.ui import STAFF, VIEWER, UiSite, csrf_of, login, serving_ui, ui_settings
from tests.support.worlds import World, make_world
from tests.ui.test_auth import alert, probe_pages

IDLE_S = 30 * 60
EXPIRED_FORM = "This form has expired: reload the page and try again."


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    # Sessions live in memory: one database kind is enough (test_shell.py runs both).
    yield from make_world("sqlite", tmp_path)


@pytest.fixture
def site(sqlite_world: World) -> Iterator[UiSite]:
    with serving_ui(sqlite_world, routers=[probe_pages]) as site:
        yield site


def set_cookie_of(response_headers: list[str], name: str) -> str:
    found = [header for header in response_headers if header.startswith(f"{name}=")]
    assert len(found) == 1, response_headers
    return found[0]


def test_the_session_cookie_is_httponly_strict_and_only_for_the_page(site: UiSite) -> None:
    with site.client() as client:
        response = login(client, STAFF.name, STAFF.password)

    header = set_cookie_of(response.headers.get_list("set-cookie"), COOKIE)
    flags = {part.strip().lower() for part in header.split(";")[1:]}
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/ui" in flags
    assert "secure" not in flags
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\.[0-9a-f]{64}", header.split(";")[0].split("=", 1)[1])


def test_behind_tls_the_cookie_is_secure(sqlite_world: World) -> None:
    ui = ui_settings(secure_cookies=True)
    with serving_ui(sqlite_world, ui=ui) as site, site.client() as client:
        page = client.get("/ui/login")
        # A client sends a Secure cookie over TLS only: this one is handed back by hand.
        login_cookie = set_cookie_of(page.headers.get_list("set-cookie"), "atoz_ui_login")
        response = client.post(
            "/ui/login",
            data={"username": STAFF.name, "password": STAFF.password, "csrf": csrf_of(page.text)},
            headers={"Cookie": login_cookie.split(";")[0]},
        )

    assert response.status_code == 303
    for header in (login_cookie, set_cookie_of(response.headers.get_list("set-cookie"), COOKIE)):
        assert "secure" in {part.strip().lower() for part in header.split(";")[1:]}


def test_a_tampered_cookie_is_refused(site: UiSite) -> None:
    with site.logged_in(STAFF) as client:
        cookie = client.cookies[COOKIE]
        session_id, mac = cookie.split(".")
        flipped = "A" if session_id[0] != "A" else "B"
        for forged in (
            flipped + session_id[1:] + "." + mac,  # another id, the old HMAC
            session_id + "." + "0" * 64,  # the id, a made-up HMAC
            session_id,  # no HMAC
        ):
            client.cookies.set(COOKIE, forged, path="/ui")
            response = client.get("/ui/probe")
            assert response.status_code == 303
            # Not "expired": this server never issued that cookie.
            assert response.headers["location"] == "/ui/login?next=/ui/probe"


def test_a_session_unused_too_long_ends_and_login_says_so(site: UiSite) -> None:
    with site.logged_in(STAFF) as client:
        site.clock.advance(IDLE_S - 60)
        assert client.get("/ui/probe").status_code == 200  # used: the idle time starts again
        site.clock.advance(IDLE_S - 60)
        assert client.get("/ui/probe").status_code == 200

        site.clock.advance(IDLE_S + 1)
        ended = client.get("/ui/probe")

        assert ended.status_code == 303
        assert ended.headers["location"] == "/ui/login?expired=1&next=/ui/probe"
        page = client.get(ended.headers["location"])
        assert page.status_code == 200
        assert alert(page.text).startswith("Your session ended")
        home = client.get("/ui/")
        assert home.status_code == 303
        assert home.headers["location"].startswith("/ui/login")


def test_a_form_without_or_with_a_wrong_csrf_is_refused(site: UiSite) -> None:
    with site.logged_in(STAFF) as client:
        page = client.get("/ui/probe")
        for data in ({}, {"csrf": "not-the-token-at-all"}, {"csrf": ""}):
            refused = client.post("/ui/probe/move", data=data)
            assert refused.status_code == 403
            assert alert(refused.text) == EXPIRED_FORM
            out = client.post("/ui/logout", data=data)
            assert out.status_code == 403
            assert alert(out.text) == EXPIRED_FORM
        # Still logged in, and the right token works.
        assert client.get("/ui/probe").status_code == 200
        assert client.post("/ui/probe/move", data={"csrf": csrf_of(page.text)}).status_code == 200


def test_another_sessions_csrf_is_refused(site: UiSite) -> None:
    with site.logged_in(STAFF) as staff, site.logged_in(VIEWER) as viewer:
        others = csrf_of(viewer.get("/ui/probe").text)
        refused = staff.post("/ui/probe/move", data={"csrf": others})
        assert refused.status_code == 403
        assert alert(refused.text) == EXPIRED_FORM


def test_logout_ends_the_session_for_good(site: UiSite) -> None:
    with site.logged_in(STAFF) as client:
        cookie = client.cookies[COOKIE]
        page = client.get("/ui/probe")

        out = client.post("/ui/logout", data={"csrf": csrf_of(page.text)})

        assert out.status_code == 303
        assert out.headers["location"] == "/ui/login"
        assert COOKIE not in client.cookies
        # The old cookie, kept by someone, opens nothing.
        client.cookies.set(COOKIE, cookie, path="/ui")
        assert client.get("/ui/probe").status_code == 303
        assert len(site.components.settings.ui.users) == 2


def test_two_logins_are_two_sessions(site: UiSite) -> None:
    with site.logged_in(STAFF) as first, site.logged_in(STAFF) as second:
        assert first.cookies[COOKIE] != second.cookies[COOKIE]
        first_page = first.get("/ui/probe")
        first.post("/ui/logout", data={"csrf": csrf_of(first_page.text)})
        assert second.get("/ui/probe").status_code == 200


class TestSessionStore:
    """The store on its own, with plain values."""

    def test_a_session_is_found_by_its_cookie_and_ends_when_idle(self) -> None:
        now = [0.0]
        store = SessionStore(idle_s=60, clock=lambda: now[0])
        cookie, session = store.start("anna", may_move=True)

        assert store.find(cookie) is session
        now[0] = 60.0
        assert store.find(cookie) is session
        now[0] = 120.5
        assert store.find(cookie) is Ended.ENDED
        assert store.find(cookie) is Ended.ENDED
        assert len(store) == 0

    def test_unsigned_or_foreign_cookies_are_nobody(self) -> None:
        store = SessionStore(idle_s=60)
        other = SessionStore(idle_s=60)
        cookie, _ = other.start("anna", may_move=True)

        for cookie_value in (None, "", ".", "x", cookie, cookie + "0", "é." + "0" * 64):
            assert store.find(cookie_value) is None

    def test_ids_and_tokens_are_random_and_never_in_a_repr(self) -> None:
        store = SessionStore(idle_s=60)
        first_cookie, first = store.start("anna", may_move=False)
        _, second = store.start("anna", may_move=False)

        assert first.id != second.id
        assert first.csrf != second.csrf
        assert first.id not in repr(first)
        assert first.csrf not in repr(first)
        store.end(first_cookie)
        assert store.find(first_cookie) is Ended.ENDED

    def test_idle_sessions_are_swept_when_a_new_one_starts(self) -> None:
        now = [0.0]
        store = SessionStore(idle_s=60, clock=lambda: now[0])
        for _ in range(3):
            store.start("anna", may_move=True)
        now[0] = 61.0
        store.start("ben", may_move=True)
        assert len(store) == 1


class TestLoginTokens:
    def test_the_form_token_must_match_its_cookie_and_be_recent(self) -> None:
        now = [1_000_000.0]
        tokens = LoginTokens(clock=lambda: now[0])
        cookie, token = tokens.issue()
        other_cookie, other_token = tokens.issue()

        assert tokens.accepts(cookie, token)
        assert not tokens.accepts(cookie, other_token)
        assert not tokens.accepts(other_cookie, token)
        assert not tokens.accepts(None, token)
        assert not tokens.accepts(cookie, None)
        assert not tokens.accepts(token + "." + "0" * 64, token)
        assert not LoginTokens(clock=lambda: now[0]).accepts(cookie, token)
        now[0] += LOGIN_TOKEN_S + 1
        assert not tokens.accepts(cookie, token)
