"""The page's shell as a browser meets it: login, the Today page, logout, headers, refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.ui import STAFF, UiSite, csrf_of, login, serving_ui
from tests.support.worlds import World


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
        assert '<nav aria-label="Main">' in today.text
        assert STAFF.name in today.text

        out = client.post("/ui/logout", data={"csrf": csrf_of(today.text)})
        assert out.status_code == 303
        assert out.headers["location"] == "/ui/login"
        assert client.get("/ui/").status_code == 303
