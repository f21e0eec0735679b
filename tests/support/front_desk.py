"""A live front desk: `atoz-watcher run` as a real process, with [ui] on, a staff and a viewer
user, a scanner inbox and the Documents API, against a test world; for the browser tests
(tests/ui/browser/) and the README's screenshots.

The configuration is a TOML file (``ATOZ_CONFIG``), as a practice would write it; the users'
passwords are registered as secrets (tests/support/leaks.py): none may reach a log line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher

from tests.support.api import CUST, DEV
from tests.support.leaks import SECRETS
from tests.support.processes import DaemonLife
from tests.support.waiting import wait_for
from tests.support.worlds import World

STAFF, STAFF_PASSWORD = "frontdesk", "desk-PASSWORD-4d9e2a71"
VIEWER, VIEWER_PASSWORD = "dr.lee", "viewer-PASSWORD-8c1f7b03"
SECRETS.add(STAFF_PASSWORD, VIEWER_PASSWORD, what="a front-desk password")
START_S = 60.0


@dataclass(frozen=True)
class Patient:
    pat_num: int
    lname: str
    fname: str
    folder: Path

    @property
    def name(self) -> str:
        """As the page writes it: "LName, FName"."""
        return f"{self.lname}, {self.fname}"


@dataclass
class FrontDesk:
    """The world, its inbox, the running `run` and the page's address."""

    world: World
    inbox: Path
    life: DaemonLife
    url: str  # http://127.0.0.1:<port>
    categories: dict[str, int] = field(default_factory=dict)

    def page(self, path: str) -> str:
        """The URL of ``path`` (e.g. "/ui/inbox")."""
        return self.url + path

    def add_patient(self, lname: str, fname: str) -> Patient:
        """A patient with an ImageFolder of its own, the folder made."""
        folder_name = f"{lname}{fname}".replace(" ", "").replace("'", "")
        pat_num = self.world.add_patient(lname, fname, folder_name)
        return Patient(pat_num, lname, fname, self.world.folder(folder_name))

    def unmatched(self) -> Path:
        return self.inbox / "_Unmatched"


def config_text(
    inbox: Path, *, session_idle_minutes: float, hasher: PasswordHasher | None = None
) -> str:
    """The practice's config.toml: the API (a key), the page (two users), one inbox."""
    hasher = hasher or PasswordHasher()
    staff_hash = hasher.hash(STAFF_PASSWORD)
    viewer_hash = hasher.hash(VIEWER_PASSWORD)
    return f"""\
[api]
enabled = true
host = "127.0.0.1"
port = 0
keys = [{{ developer_key = {json.dumps(DEV)}, customer_key = {json.dumps(CUST)} }}]

[ui]
enabled = true
session_idle_minutes = {session_idle_minutes}

[[ui.users]]
name = {json.dumps(STAFF)}
password_hash = {json.dumps(staff_hash)}
role = "staff"

[[ui.users]]
name = {json.dumps(VIEWER)}
password_hash = {json.dumps(viewer_hash)}
role = "viewer"

[[inbox.folders]]
path = {json.dumps(str(inbox))}
"""


@contextmanager
def front_desk(
    world: World, folder: Path, *, session_idle_minutes: float = 30.0
) -> Iterator[FrontDesk]:
    """`atoz-watcher run` serving the page on a free loopback port, watching ``world``'s root
    and an inbox in ``folder``; three image categories (Misc first, the default). Stopped
    (SIGTERM, and killed if it lingers) when the block ends."""
    categories = {
        name: world.add_category(name, order=order)
        for order, name in enumerate(("Misc", "X-Rays", "Forms"))
    }
    inbox = folder / "inbox"
    inbox.mkdir()
    config = folder / "config.toml"
    config.write_text(config_text(inbox, session_idle_minutes=session_idle_minutes))
    life = DaemonLife(
        world,
        folder / "run.log",
        ATOZ_CONFIG=str(config),
        ATOZ_THUMBNAILS__BACKFILL_DAYS="0",
    )
    try:
        life.wait_ready(START_S)
        port: list[int] = []

        def listening() -> bool:
            port.extend(int(str(e["port"])) for e in life.events("api.listening"))
            return bool(port)

        wait_for(listening, timeout=START_S)
        yield FrontDesk(world, inbox, life, f"http://127.0.0.1:{port[0]}", categories)
    finally:
        try:
            life.terminate()
        finally:
            life.close()
