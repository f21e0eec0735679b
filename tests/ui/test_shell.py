"""The page's shell as a browser meets it: login, the Today page, logout, the headers, the
error pages, the page alone or beside the API, and served by `atoz-watcher api` and `run`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from atoz_watcher.app.check import check_ui
from atoz_watcher.config.sections import ApiSettings, UiSettings
from tests.support.api import AUTH
from tests.support.processes import API_ENV, process
from tests.support.ui import (
    STAFF,
    VIEWER,
    UiSite,
    csrf_of,
    login,
    password_hash,
    serving_ui,
    ui_settings,
)
from tests.support.worlds import World

CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


@pytest.fixture
def site(bare_world: World) -> Iterator[UiSite]:
    with serving_ui(bare_world) as site:
        yield site


def test_login_leads_to_today_and_logout_ends_the_session(site: UiSite) -> None:
    with site.client() as client:
        first = client.get("/ui/")
        assert first.status_code == 303
        assert first.headers["location"] == "/ui/login"

        done = login(client, STAFF.name, STAFF.password)
        assert done.status_code == 303
        assert done.headers["location"] == "/ui/"

        today = client.get("/ui/")
        assert today.status_code == 200
        assert "<h1>Today</h1>" in today.text
        assert STAFF.name in today.text

        out = client.post("/ui/logout", data={"csrf": csrf_of(today.text)})
        assert out.status_code == 303
        assert out.headers["location"] == "/ui/login"
        assert client.get("/ui/").status_code == 303


def test_every_page_has_the_contracts_frame(site: UiSite) -> None:
    with site.logged_in(VIEWER) as client:
        html = client.get("/ui/").text

    assert '<a class="skip" href="#main">' in html
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.DOTALL)
    assert nav is not None
    links = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav.group(1))
    assert links == [
        ("/ui/", "Today"),
        ("/ui/inbox", "Inbox"),
        ("/ui/patients", "Patients"),
        ("/ui/health", "Health"),
    ]
    assert 'aria-current="page">Today' in nav.group(1)
    assert VIEWER.name in nav.group(1)
    logout = re.search(
        r'<form id="logout" method="post" action="/ui/logout">(.*?)</form>', html, re.DOTALL
    )
    assert logout is not None
    assert 'name="csrf"' in logout.group(1)
    assert '<button type="submit">Log out</button>' in logout.group(1)
    assert '<main id="main"' in html
    assert html.count("<h1") == 1
    assert '<link rel="stylesheet" href="/ui/static/style.css">' in html
    assert "http://" not in html
    assert "https://" not in html


def test_the_login_page_labels_every_control(site: UiSite) -> None:
    with site.client() as client:
        html = client.get("/ui/login").text

    assert '<form id="login" class="stacked narrow" method="post" action="/ui/login">' in html
    assert '<label for="username">Name</label>' in html
    assert re.search(r'<input id="username" name="username"', html)
    assert '<label for="password">Password</label>' in html
    assert re.search(r'<input id="password" name="password" type="password"', html)
    assert '<button type="submit" class="primary">Log in</button>' in html
    assert 'type="hidden" name="next"' in html
    assert '<nav aria-label="Main">' not in html  # nobody is logged in yet


def test_pages_carry_the_security_headers_and_are_never_cached(site: UiSite) -> None:
    with site.logged_in(STAFF) as client:
        answers = {
            "today": client.get("/ui/"),
            "missing": client.get("/ui/no-such-page"),
            "refused form": client.post("/ui/logout", data={}),
        }
        with site.client() as anonymous:
            answers["login"] = anonymous.get("/ui/login")
            answers["redirect"] = anonymous.get("/ui/")
        static = client.get("/ui/static/style.css")

    for what, response in answers.items():
        assert response.headers["content-security-policy"] == CSP, what
        assert response.headers["x-content-type-options"] == "nosniff", what
        assert response.headers["referrer-policy"] == "same-origin", what
        assert response.headers["cache-control"] == "no-store", what
    assert static.status_code == 200
    assert static.headers["content-type"].startswith("text/css")
    assert static.headers["content-security-policy"] == CSP
    assert static.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in static.headers.get("cache-control", "")
    assert "http" not in static.text  # nothing fetched from elsewhere


def test_an_unknown_page_is_an_html_404_with_the_reason(site: UiSite) -> None:
    with site.client() as anonymous:
        missing = anonymous.get("/ui/no-such-page")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert '<p role="alert">There is no such page.</p>' in missing.text
        assert '<nav aria-label="Main">' not in missing.text
    with site.logged_in(STAFF) as client:
        missing = client.get("/ui/no-such-page")
        assert missing.status_code == 404
        assert '<nav aria-label="Main">' in missing.text


def test_the_root_sends_a_browser_to_the_page_without_a_key(site: UiSite) -> None:
    with site.client() as client:
        home = client.get("/")
        assert home.status_code == 303
        assert home.headers["location"] == "/ui/"
        assert client.get("/ui").headers["location"].endswith("/ui/")
        # The API's own schema and key check are as they were.
        assert client.get("/api/v1/documents", params={"PatNum": 1}).status_code == 401
        assert client.get("/api/v1/openapi.json").status_code == 200


def test_the_page_alone_serves_no_api(bare_world: World) -> None:
    with serving_ui(bare_world, api=False) as site, site.client(headers=AUTH) as client:
        assert client.get("/").headers["location"] == "/ui/"
        assert client.get("/api/v1/documents", params={"PatNum": 1}).status_code == 404
        assert login(client, STAFF.name, STAFF.password).status_code == 303
        assert "<h1>Today</h1>" in client.get("/ui/").text


def test_check_says_who_may_log_in() -> None:
    api = ApiSettings(port=30223)
    nobody = check_ui(UiSettings(enabled=True), api)
    some = check_ui(ui_settings(), api)

    assert not nobody.ok
    assert "hash-password" in nobody.detail
    assert some.ok
    assert some.detail == "2 users (1 staff) may log in at http://127.0.0.1:30223/ui/"


def ui_env() -> dict[str, str]:
    users = [
        {"name": a.name, "password_hash": password_hash(a.password), "role": a.role}
        for a in (STAFF, VIEWER)
    ]
    return {"ATOZ_UI__ENABLED": "true", "ATOZ_UI__USERS": json.dumps(users), "ATOZ_API__PORT": "0"}


def log_in_and_open_today(port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        assert login(client, STAFF.name, STAFF.password).status_code == 303
        today = client.get("/ui/")
        assert today.status_code == 200
        assert "<h1>Today</h1>" in today.text


@pytest.mark.process
def test_atoz_watcher_api_serves_the_page_beside_the_api(bare_world: World) -> None:
    with process(bare_world, "api", API_ENV | ui_env()) as api:
        port = api.port()
        log_in_and_open_today(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            assert client.get("/api/v1/documents", params={"PatNum": 1}).status_code == 401
            keyed = client.get("/api/v1/documents", params={"PatNum": 1}, headers=AUTH)
            assert keyed.status_code != 401
        assert api.terminate() == 0


@pytest.mark.process
def test_atoz_watcher_run_serves_the_page_with_the_api_disabled(bare_world: World) -> None:
    env = ui_env() | {
        "ATOZ_API__ENABLED": "false",
        "ATOZ_METRICS__ENABLED": "false",
        "ATOZ_THUMBNAILS__ENABLED": "false",
        "ATOZ_MATERIALIZER__INTERVAL": "0",
    }
    with process(bare_world, "run", env) as run:
        port = run.port()
        log_in_and_open_today(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            assert client.get("/api/v1/documents", params={"PatNum": 1}).status_code == 404
        assert run.terminate() == 0
