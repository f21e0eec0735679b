"""Database faults during a burst, with the daemon as a real process.

- a connection killed mid-transaction (``KILL <id>`` of every connection the daemon holds,
  again and again, while it registers);
- the registration lock held by someone else for longer than ``scan.lock_timeout`` (MariaDB:
  ``GET_LOCK`` from a test connection; SQLite: a ``BEGIN IMMEDIATE`` write transaction);
- MariaDB stopped and started (the server itself; skipped under ATOZ_TEST_NO_OUTAGE, and always
  started again in a ``finally``). ``tests/app/test_daemon_process.py`` has the ten-second outage;
  this one measures the recovery.

Each ends with nothing lost, nothing doubled, nothing misplaced, and everything registered after
the database's return. The time that took is printed (docs/RELIABILITY.md's figure), never
asserted: a recovery that never comes fails at a deadline far above it (``RECOVERY_DEADLINE_S``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from atoz_watcher.db.lock import LOCK_NAME, registration_lock
from tests.support.mariadb import MARIADB, mariadb_start, mariadb_stop
from tests.support.processes import DaemonLife
from tests.support.worlds import World, make_world

pytestmark = pytest.mark.process  # the daemon as a process

# Everything must be registered by then after the database returns (about 1 s in practice):
# far enough above a slow machine that only a recovery that never comes reaches it.
RECOVERY_DEADLINE_S = 60.0
LOCK_TIMEOUT_S = 1  # scan.lock_timeout for these tests
FILES = 150


class Burst:
    """A clinic (two categories, 20 patient folders) and a burst of prefixed files."""

    def __init__(self, world: World) -> None:
        self.world = world
        world.add_category("Misc", order=0)
        self.xrays = world.add_category("X-Rays", order=1)
        self.folders = world.patients_with_folders("Fault", 20)
        self.dropped = 0
        self._writer: threading.Thread | None = None

    def start(self, count: int = FILES, gap_s: float = 0.006) -> None:
        """Drop ``count`` files in a thread, ``gap_s`` apart (a burst of about a second)."""
        first = self.dropped
        self.dropped += count

        def write() -> None:
            for i in range(first, first + count):
                folder = self.folders[i % len(self.folders)]
                (folder / f"_{self.xrays}_f{i}.jpg").write_bytes(f"f{i}\n".encode() * 200)
                time.sleep(gap_s)

        self._writer = threading.Thread(target=write)
        self._writer.start()

    def writing(self) -> bool:
        return self._writer is not None and self._writer.is_alive()

    def join(self) -> None:
        if self._writer is not None:
            self._writer.join()

    def state(self) -> str:
        """What is still missing: '' once every dropped file has its row, no prefixed file
        is left and the journal is empty."""
        journal = self.world.state / "journal"
        try:
            rows = len(self.world.documents())
        except Exception as exc:  # noqa: BLE001 - the database may be down or just back
            return f"database: {exc}"
        missing = []
        if rows < self.dropped:
            missing.append(f"{rows} of {self.dropped} rows")
        if prefixed := sorted(p.name for p in self.world.root.glob("*/*/_*")):
            missing.append(f"prefixed files left: {prefixed[:5]}")
        if journal.is_dir() and (entries := list(journal.glob("*.json"))):
            missing.append(f"journal entries: {entries}")
        return ", ".join(missing)

    def audit(self) -> dict[str, list[str]]:
        """lost / duplicated / misplaced, each a list of what is wrong."""
        world = self.world
        with world.engine.connect() as conn:
            folders = dict(conn.execute(text("SELECT PatNum, ImageFolder FROM patient")).all())
        rows = world.documents()
        keys = Counter((folders[r["PatNum"]], r["FileName"]) for r in rows)
        found: dict[str, list[Path]] = {}
        for folder in self.folders:
            for path in folder.iterdir():
                if path.is_file():
                    found.setdefault(path.read_bytes().split(b"\n", 1)[0].decode(), []).append(path)
        problems: dict[str, list[str]] = {"lost": [], "duplicated": [], "misplaced": []}
        problems["duplicated"] += [f"{n} rows for {k}" for k, n in keys.items() if n > 1]
        problems["misplaced"] += [
            f"{r['FileName']}: category {r['DocCategory']}"
            for r in rows
            if r["DocCategory"] != self.xrays
        ]
        for i in range(self.dropped):
            folder = self.folders[i % len(self.folders)]
            paths = found.pop(f"f{i}", [])
            if not paths:
                problems["lost"].append(f"f{i}: no file")
                continue
            if len(paths) > 1:
                problems["duplicated"].append(f"f{i}: {paths}")
            path = paths[0]
            if path != folder / f"f{i}.jpg":
                problems["misplaced"].append(f"f{i}: at {path}")
            if keys[(folder.name, path.name)] == 0:
                problems["lost"].append(f"f{i}: no row")
        problems["misplaced"] += [f"unexpected file {p}" for ps in found.values() for p in ps]
        on_disk = {(f.name, p.name) for f in self.folders for p in f.iterdir() if p.is_file()}
        problems["duplicated"] += [f"row without a file: {k}" for k in keys if k not in on_disk]
        return problems


def recover(burst: Burst, life: DaemonLife, returned: float, what: str) -> float:
    """Wait until everything is registered after the database's return (``returned``,
    monotonic); fail if that never happens within ``RECOVERY_DEADLINE_S``. Returns the seconds
    it took, for the printed figure."""
    while missing := burst.state():
        if time.monotonic() - returned > RECOVERY_DEADLINE_S:
            pytest.fail(f"{what}: {missing} {RECOVERY_DEADLINE_S} s after\n{life.tail(30)}")
        if life.proc.poll() is not None:
            pytest.fail(f"{what}: the daemon exited\n{life.tail()}")
        time.sleep(0.02)
    return time.monotonic() - returned


def finish(burst: Burst, life: DaemonLife, what: str, took: float) -> None:
    time.sleep(0.3)  # a straggling double registration would show up now
    assert life.terminate() == 0, life.tail()
    problems = burst.audit()
    counts = {k: len(v) for k, v in problems.items()}
    replays = life.tail(100_000).count('"journal.replayed"')
    print(  # noqa: T201 - the figures are the point
        f"{what}[{burst.world.kind}]: files={burst.dropped} recovery={took:.2f}s "
        f"journal-replays={replays} {counts}"
    )
    assert not any(problems.values()), problems


def start_daemon(world: World) -> DaemonLife:
    world.state.mkdir(parents=True, exist_ok=True)
    life = DaemonLife(
        world, world.state.parent / "daemon.log", ATOZ_SCAN__LOCK_TIMEOUT=str(LOCK_TIMEOUT_S)
    )
    life.wait_ready()
    deadline = time.monotonic() + 30
    while '"rescan.finished"' not in life.tail(400):  # the catch-up scan is over
        assert time.monotonic() < deadline, life.tail()
        time.sleep(0.05)
    return life


@pytest.fixture(params=["mariadb", "mariadb-opendental"])
def mariadb_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """MariaDB with InnoDB tables (ours) and with Open Dental's MyISAM ones."""
    yield from make_world(request.param, tmp_path)


def document_count(world: World) -> int:
    """Rows in document, read past the test's engine (whose SQLite transactions write-lock)."""
    if world.kind == "sqlite":
        with closing(sqlite3.connect(world.url.removeprefix("sqlite:///"))) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM document").fetchone()[0])
    with (
        closing(pymysql.connect(**MARIADB, database=database_name(world))) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("SELECT COUNT(*) FROM document")
        row = cursor.fetchone()
        return int(row[0]) if row else -1


@pytest.fixture(params=["mariadb"])
def one_mariadb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """MariaDB only: where the table engine does not matter."""
    yield from make_world(request.param, tmp_path)


def database_name(world: World) -> str:
    return world.url.rsplit("/", 1)[1].split("?", 1)[0]


def test_connections_killed_mid_transaction(mariadb_world: World) -> None:
    """Every connection the daemon holds is killed, again and again, while it registers: the
    holder of the registration lock (mid-batch: between the lock and the commit) as soon as it
    is seen, the idle ones in its pool every 50 ms."""
    world = mariadb_world
    burst = Burst(world)
    life = start_daemon(world)
    world.engine.dispose()  # the test's own connections stay out of the way until the end
    name = database_name(world)
    killed = mid_batch = 0
    try:
        with closing(pymysql.connect(**MARIADB, autocommit=True)) as admin, admin.cursor() as cur:
            burst.start()
            stop_at = None
            sweep_at = 0.0
            while stop_at is None or time.monotonic() < stop_at:
                if stop_at is None and not burst.writing():
                    stop_at = time.monotonic() + 1.0  # settling files meet killed links too
                cur.execute("SELECT IS_USED_LOCK(%s)", (LOCK_NAME,))
                (holder,) = cur.fetchone() or (None,)
                targets = [holder] if holder is not None else []
                if time.monotonic() >= sweep_at:
                    sweep_at = time.monotonic() + 0.05
                    cur.execute(
                        "SELECT ID FROM information_schema.PROCESSLIST "
                        "WHERE DB = %s AND ID <> CONNECTION_ID()",
                        (name,),
                    )
                    targets += [row[0] for row in cur.fetchall() if row[0] != holder]
                for conn_id in targets:
                    try:
                        cur.execute(f"KILL {int(conn_id)}")
                    except pymysql.err.OperationalError:
                        continue  # it ended on its own meanwhile
                    killed += 1
                    mid_batch += conn_id == holder
                time.sleep(0.002)
            returned = time.monotonic()
        burst.join()
        took = recover(burst, life, returned, "kill")
        print(  # noqa: T201 - the figures are the point
            f"kill[{world.kind}]: {killed} connections killed, {mid_batch} holding the lock"
        )
        assert mid_batch > 0, "no batch was ever caught holding the lock"
        finish(burst, life, "kill", took)
    finally:
        burst.join()
        life.close()


@pytest.fixture(params=["sqlite", "mariadb"])
def lock_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    yield from make_world(request.param, tmp_path)


def test_registration_lock_held_past_the_timeout(lock_world: World) -> None:
    world = lock_world
    burst = Burst(world)
    life = start_daemon(world)
    hold_s = 3 * LOCK_TIMEOUT_S + 1
    try:
        if world.kind == "sqlite":
            db = world.url.removeprefix("sqlite:///")
            holder = sqlite3.connect(db, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # SQLite's registration lock is the write lock
        else:
            holder = pymysql.connect(**MARIADB, database=database_name(world), autocommit=True)
            with holder.cursor() as cursor:
                cursor.execute("SELECT GET_LOCK(%s, 0)", (LOCK_NAME,))
                assert cursor.fetchone() == (1,)
        with closing(holder):
            burst.start()
            time.sleep(hold_s)  # the fault itself: the lock held this long
            assert document_count(world) == 0, "registered while another held the lock"
            if world.kind == "sqlite":
                holder.execute("COMMIT")
            else:
                with holder.cursor() as cursor:
                    cursor.execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
            returned = time.monotonic()
        burst.join()
        took = recover(burst, life, returned, "lock")
        assert '"registration.retry"' in life.tail(2000), "the daemon never noticed the lock"
        finish(burst, life, "lock", took)
    finally:
        burst.join()
        life.close()


@pytest.mark.outage
def test_mariadb_restart_recovery_time(one_mariadb: World) -> None:
    world = one_mariadb
    if os.environ.get("ATOZ_TEST_NO_OUTAGE"):
        pytest.skip("ATOZ_TEST_NO_OUTAGE is set: the shared MariaDB must not be stopped")
    burst = Burst(world)
    life = start_daemon(world)
    try:
        burst.start()
        time.sleep(0.3)  # mid-burst
        mariadb_stop()
        try:
            burst.join()
            time.sleep(3)  # the outage itself
        finally:
            mariadb_start()  # returns once the server answers a ping
        returned = time.monotonic()
        took = recover(burst, life, returned, "outage")
        finish(burst, life, "outage", took)
    finally:
        burst.join()
        life.close()


def test_lock_release_on_a_killed_connection_reraises_the_database_error(
    one_mariadb: World,
) -> None:
    """Regression: a connection killed while it held the registration lock raised
    PendingRollbackError from the lock's release (not a DBAPIError), which hid the real error,
    escaped the daemon's retry and dropped the batch's files until the next safety rescan."""
    world = one_mariadb

    def kill(conn_id: int) -> None:
        with (
            closing(pymysql.connect(**MARIADB, autocommit=True)) as admin,
            admin.cursor() as cursor,
        ):
            cursor.execute(f"KILL {conn_id}")

    def held_and_killed(conn: Connection) -> None:
        with registration_lock(conn, timeout_s=LOCK_TIMEOUT_S):
            kill(int(conn.execute(text("SELECT CONNECTION_ID()")).scalar() or 0))
            conn.execute(text("SELECT 1"))  # the session is gone

    with world.engine.connect() as conn:
        with pytest.raises(DBAPIError):
            held_and_killed(conn)
        assert conn.invalidated
    with (
        closing(pymysql.connect(**MARIADB, autocommit=True)) as admin,
        admin.cursor() as cursor,
    ):
        cursor.execute("SELECT IS_USED_LOCK(%s)", (LOCK_NAME,))
        assert cursor.fetchone() == (None,), "the server kept the lock of a dead session"
