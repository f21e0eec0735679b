"""`atoz-watcher run` as systemd runs it: a real process, real signals, a real outage."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.mariadb import mariadb_start, mariadb_stop
from tests.support.waiting import wait_for
from tests.support.worlds import World

pytestmark = pytest.mark.process  # each test runs `atoz-watcher run`

STOP_S = 10.0


class Daemon:
    """One `atoz-watcher run` process and the notify socket it reports to."""

    def __init__(self, world: World, notify: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.unlink(missing_ok=True)
        self.sock.bind(str(notify))
        self.messages: list[str] = []
        env = world.cli_env() | {
            "NOTIFY_SOCKET": str(notify),
            "ATOZ_WATCHER__SETTLE_SECONDS": "0.3",
            "ATOZ_METRICS__PORT": "0",
        }
        self.log = (world.state.parent / "daemon.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atoz_watcher", "run"],
            env=env,
            stdout=self.log,
            stderr=self.log,
        )

    def receive(self, wanted: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.messages:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {wanted} from the daemon (got {self.messages})")
            self.sock.settimeout(min(left, 0.2))
            try:
                self.messages.extend(self.sock.recv(4096).decode().split("\n"))
            except TimeoutError:
                if self.proc.poll() is not None:
                    pytest.fail(f"the daemon exited ({self.proc.returncode}) before {wanted}")

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(STOP_S)
        self.receive("STOPPING=1", timeout=1)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
        self.log.close()


@contextmanager
def daemon_process(world: World) -> Iterator[Daemon]:
    daemon = Daemon(world, world.state.parent / "notify.sock")
    try:
        daemon.receive("READY=1")
        yield daemon
    finally:
        daemon.close()


def drop(folders: list[Path], count: int, category: int, start: int = 0) -> None:
    for i in range(start, start + count):
        (folders[i % len(folders)] / f"_{category}_f{i}.jpg").write_bytes(b"x" * 2000)


def exactly_once(world: World, total: int, category: int) -> None:
    docs = world.documents()
    counts = Counter((d["PatNum"], d["FileName"]) for d in docs)
    assert len(docs) == total
    assert max(counts.values()) == 1
    assert {d["DocCategory"] for d in docs} == {category}
    assert not list(world.root.rglob("_*"))
    assert not list((world.state / "journal").glob("*.json"))


@pytest.fixture
def clinic(world: World) -> tuple[World, int, list[Path]]:
    world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    return world, xrays, world.patients_with_folders("Proc", 20)


def test_sigterm_exits_0_and_leaves_no_half_done_file(
    clinic: tuple[World, int, list[Path]],
) -> None:
    world, xrays, folders = clinic
    with daemon_process(world) as daemon:
        drop(folders, 300, xrays)
        wait_for(lambda: len(world.documents()) > 0)
        assert daemon.terminate() == 0
    # Whatever was in hand was finished: no batch is left half done in the journal.
    assert not list((world.state / "journal").glob("*.json"))
    with daemon_process(world) as daemon:
        wait_for(lambda: len(world.documents()) == 300)
        assert daemon.terminate() == 0
    exactly_once(world, 300, xrays)


def test_kill_9_mid_burst_then_restart_registers_everything_once(
    clinic: tuple[World, int, list[Path]],
) -> None:
    world, xrays, folders = clinic
    with daemon_process(world) as daemon:
        drop(folders, 400, xrays)
        wait_for(lambda: len(world.documents()) > 0)
        daemon.proc.kill()
        daemon.proc.wait()
    drop(folders, 100, xrays, start=400)  # arrives while the service is down
    with daemon_process(world) as daemon:
        wait_for(lambda: len(world.documents()) == 500)
        assert daemon.terminate() == 0
    exactly_once(world, 500, xrays)


@pytest.mark.outage
def test_database_outage_loses_nothing(clinic: tuple[World, int, list[Path]]) -> None:
    world, xrays, folders = clinic
    if world.kind == "sqlite":
        pytest.skip("an outage is a MariaDB matter; SQLite is a file")
    if os.environ.get("ATOZ_TEST_NO_OUTAGE"):
        pytest.skip("ATOZ_TEST_NO_OUTAGE is set: the shared MariaDB must not be stopped")
    with daemon_process(world) as daemon:
        drop(folders, 100, xrays)
        wait_for(lambda: len(world.documents()) == 100)
        mariadb_stop()
        try:
            drop(folders, 200, xrays, start=100)
            time.sleep(10)  # the outage itself: ten seconds without a database
        finally:
            mariadb_start()
        wait_for(lambda: len(world.documents()) == 300, timeout=90)
        assert daemon.terminate() == 0
    exactly_once(world, 300, xrays)
