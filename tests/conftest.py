"""Fixtures: a test world (A-to-Z root, state folder, database) on SQLite and on MariaDB.

The helpers themselves live in tests/support/ (worlds, MariaDB, the secrets check); this file
holds only pytest's hooks and the fixtures every folder uses.

MariaDB is the real server on 127.0.0.1:3306 (root, no password); each test gets its own
database, created and dropped by tests/support/mariadb.py. Where the server is absent the
MariaDB cases are skipped, except under CI (CI=true), where that is a failure: CI must test both
databases.

``--long`` (or ``ATOZ_FAULT_LONG=1``) switches the fault suite (tests/fault/) to its long mode.
The option is registered here, so that pytest knows it however it is started: from the root
(``pytest --long``) or naming a folder or file (``pytest --long tests/fault/test_crash.py``).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.leaks import SECRETS, Secrets, SecretsWatch
from tests.support.worlds import DB_KINDS, World, make_world

_OWN_BASETEMP = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="fault suite (tests/fault/): the long mode (same as ATOZ_FAULT_LONG=1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Give each run a fresh temporary root of its own (unless --basetemp is given).

    pytest's default numbered folders are pruned at exit by a helper that can leave an
    os.scandir iterator open; with warnings as errors that fails a run whose tests all passed.
    A root of our own is never pruned that way, and concurrent runs cannot touch each other's.
    """
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="atoz-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp
    config.pluginmanager.register(SecretsWatch(), "atoz-secrets-watch")


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        # rm, not shutil.rmtree: some tests build folders deeper than Python's recursion limit.
        subprocess.run(["/bin/rm", "-rf", "--", own], check=False)


@pytest.fixture(params=DB_KINDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world on each database: SQLite, MariaDB, and MariaDB with Open Dental's own schema."""
    yield from make_world(request.param, tmp_path)


@pytest.fixture(params=DB_KINDS[:2])
def bare_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world on SQLite and on MariaDB whose tables atoz-watcher created (or will create)."""
    yield from make_world(request.param, tmp_path)


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread running."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def secrets() -> Secrets:
    """The session's registry: ``secrets.add(password)``, ``secrets.add_payload(b64)``."""
    return SECRETS
