"""The front-desk page for the tests: served on loopback over a world, with two users.

Usage (tests/ui/...)::

    from tests.support.ui import STAFF, VIEWER, UiSite, login, serving_ui

    @pytest.fixture
    def site(bare_world: World) -> Iterator[UiSite]:   # SQLite and MariaDB
        with serving_ui(bare_world) as site:            # the API's server, a free port
            yield site

    def test_today(site: UiSite) -> None:
        with site.logged_in(STAFF) as client:           # an httpx.Client with the session
            page = client.get("/ui/")
            assert page.status_code == 200
        with site.client() as anonymous:                 # no session
            response = login(anonymous, VIEWER.name, VIEWER.password)
            assert response.status_code == 303

``serving_ui(world, ui=..., api=..., status=..., **settings)``: ``ui`` replaces the UiSettings
(``ui_settings(**changes)`` makes one with the two users); ``api=False`` serves the page alone,
as ``run`` does with [api] disabled; ``status`` is a StatusBoard to show (None: as
``atoz-watcher api``, no watcher in the process); ``routers`` are a test's own page modules'
``router`` functions (``router(parts, web) -> APIRouter``), included after the shell's;
other keyword arguments go to Settings (``inbox=InboxSettings(folders=...)``,
``storage="InDatabase"``, ``thumbnails=...``).
``site.clock`` is the page's clock (sessions' idleness, the login window):
``site.clock.advance(seconds)``. ``site.parts`` is the UiParts the page was given,
``site.components`` the wiring it came from. ``csrf_of(html)`` reads a page's form token.

The users' passwords are registered as secrets (tests/support/leaks.py): the suite fails if
one reaches a log line or an error body. Their hashes use cheap argon2 parameters, passed in
here explicitly: the service itself always hashes with argon2-cffi's defaults.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from argon2 import PasswordHasher
from fastapi import APIRouter

from atoz_watcher.api import ApiServer
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.sections import ApiSettings, ThumbnailSettings, UiSettings, UiUser
from atoz_watcher.config.settings import Settings
from atoz_watcher.system.status import StatusBoard
from atoz_watcher.ui.app import create_ui, standalone
from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.web import Web
from tests.support.api import KEYS
from tests.support.leaks import SECRETS
from tests.support.waiting import wait_for
from tests.support.worlds import World

STOP_S = 15.0
# Tests only: argon2 at its cheapest, so logging in costs milliseconds.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    role: str


STAFF = Account("frontdesk", "staff-PW-4c1e9a7b52", "staff")
VIEWER = Account("lookonly", "viewer-PW-93d0b6f2e8", "viewer")
SECRETS.add(STAFF.password, VIEWER.password, what="a UI user's password")


@cache
def password_hash(password: str) -> str:
    return CHEAP_HASHER.hash(password)


def ui_settings(**changes: Any) -> UiSettings:
    """[ui] enabled with the STAFF and VIEWER users (``changes`` override)."""
    users = [
        UiUser(name=a.name, password_hash=password_hash(a.password), role=a.role)  # type: ignore[arg-type]
        for a in (STAFF, VIEWER)
    ]
    return UiSettings(**{"enabled": True, "users": users, **changes})


class Clock:
    """A monotonic clock the test moves: ``advance(seconds)``."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass
class UiSite:
    url: str
    clock: Clock
    parts: UiParts
    components: Components

    def client(self, **options: Any) -> httpx.Client:
        """A client of the server, not logged in, that does not follow redirects."""
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=60, **options)

    @contextmanager
    def logged_in(self, account: Account = STAFF) -> Iterator[httpx.Client]:
        """A client logged in as ``account`` (its session cookie set)."""
        with self.client() as client:
            response = login(client, account.name, account.password)
            assert response.status_code == 303, response.text
            yield client


_CSRF = re.compile(r'<input type="hidden" name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found is not None, "no csrf field on the page"
    return found.group(1)


def login(client: httpx.Client, name: str, password: str, *, next_path: str = "") -> httpx.Response:
    """Open the login page (for its form token and cookie), then post ``name`` and
    ``password``: the answer (303 on success, 401 wrong, 429 too many)."""
    page = client.get("/ui/login")
    assert page.status_code == 200, page.text
    return client.post(
        "/ui/login",
        data={
            "username": name,
            "password": password,
            "csrf": csrf_of(page.text),
            "next": next_path,
        },
    )


@contextmanager
def serving_ui(
    world: World,
    *,
    ui: UiSettings | None = None,
    api: bool = True,
    status: StatusBoard | None = None,
    routers: Sequence[Callable[[UiParts, Web], APIRouter]] = (),
    **settings: Any,
) -> Iterator[UiSite]:
    """The page (and, with ``api``, the Documents API with tests.support.api's keys) served
    on a free loopback port as ``run``/``api`` serve it; stopped, its threads gone, after."""
    config = Settings(
        atoz_path=world.root,
        database_url=world.url,
        state_dir=world.state,
        api=ApiSettings(keys=KEYS, enabled=api),
        ui=ui or ui_settings(),
        **{"thumbnails": ThumbnailSettings(enabled=False, backfill_days=0), **settings},
    )
    components = Components.from_settings(config, world.engine, inline_thumbnails=True)
    clock = Clock()
    parts = components.ui_parts(status=status)
    page = create_ui(config.ui, parts, clock=clock)
    for router in routers:  # a test's own pages, made as ui.pages' are
        page.include_router(router(parts, page.state.web))
    if api:
        app = components.api(mounts={"/ui": page}, home="/ui/")
    else:
        reader = components.reader
        app = standalone(page, on_close=None if reader is world.engine else reader.dispose)
    before = set(threading.enumerate())
    server = ApiServer(app, host="127.0.0.1", port=0)
    server.start()
    try:
        yield UiSite(url=server.url, clock=clock, parts=parts, components=components)
    finally:
        server.stop()
        wait_for(
            lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()],
            timeout=STOP_S,
        )
