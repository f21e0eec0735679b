"""``[watcher] mode = "smb"`` against a real Samba server on loopback (tests/support/samba.py).

The files are written through the SMB protocol, as a Windows workstation writes them to the
server's share; the daemon hears of them through SMB2 CHANGE_NOTIFY and registers them from the
same folder (the share's folder stands in for the CIFS mount of it).
"""

from __future__ import annotations

import queue
import socket
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from atoz_watcher.app.check import CheckResult, run_checks
from atoz_watcher.config.sections import SmbSettings, WatcherSettings
from atoz_watcher.config.settings import Settings, load_settings
from atoz_watcher.errors import ConfigError
from atoz_watcher.rules.ignore import IgnoreRules
from atoz_watcher.watch.handler import QueueingHandler
from atoz_watcher.watch.observer import WatchError, start_watching
from tests.support.clinics import misc_and_xrays
from tests.support.daemons import by_name, running
from tests.support.samba import Relay, start_samba
from tests.support.smbd import Samba, Workstation
from tests.support.waiting import wait_for
from tests.support.worlds import World, make_world


@contextmanager
def serving(world: World, tmp_path: Path, *, notify: bool = True) -> Iterator[Samba]:
    samba = start_samba(tmp_path / "samba", world.root, notify=notify)
    try:
        yield samba
    finally:
        samba.stop()


@contextmanager
def workstation(samba: Samba) -> Iterator[Workstation]:
    client = Workstation(samba)
    try:
        yield client
    finally:
        client.close()


def smb_settings(samba: Samba, *, port: int | None = None, **extra: Any) -> SmbSettings:
    return SmbSettings(
        server="127.0.0.1",
        port=port or samba.port,
        share=samba.share,
        username=samba.username,
        password_file=samba.password_file,
        timeout=10,
        **extra,
    )


@pytest.fixture
def clinic(world: World) -> tuple[World, int, int]:
    return misc_and_xrays(world)


@pytest.mark.process
def test_files_written_over_smb_are_registered_once(
    clinic: tuple[World, int, int], tmp_path: Path
) -> None:
    world, misc, xrays = clinic
    folders = [f.name for f in world.patients_with_folders("Share", 4)]

    with (
        serving(world, tmp_path) as samba,
        workstation(samba) as client,
        running(world, mode="smb", smb=smb_settings(samba), open_settle_seconds=0.5) as daemon,
    ):
        assert daemon.mode == "smb"
        for j in range(5):
            for folder in folders:
                name = f"_{xrays}_w{j}.jpg" if j % 2 else f"w{j}.jpg"
                client.write(f"S/{folder}/{name}", b"x" * 2000)
        # A new patient folder (and its letter folder) made on the share, then a file in it.
        pat = world.add_patient("Late", "Comer")
        client.mkdir(f"L/LateComer{pat}")
        client.write(f"L/LateComer{pat}/first.jpg", b"1")
        # Written under a temporary name, then renamed into place.
        client.write(f"L/LateComer{pat}/scan.jpg.tmp", b"partial and the rest")
        client.rename(f"L/LateComer{pat}/scan.jpg.tmp", f"L/LateComer{pat}/scan.jpg")
        wait_for(lambda: len(world.documents()) >= 22)
        assert daemon.rescans == {"startup": 1}  # heard, not found by a rescan

    counts = by_name(world)
    assert len(counts) == 22
    assert max(counts.values()) == 1
    assert sorted(name for p, name in counts if p == pat) == ["first.jpg", "scan.jpg"]
    assert Counter(d["DocCategory"] for d in world.documents()) == {misc: 14, xrays: 8}
    assert not list(world.root.rglob("_*"))


@pytest.fixture
def sqlite_clinic(tmp_path: Path) -> Iterator[tuple[World, int, int]]:
    for world in make_world("sqlite", tmp_path):
        yield misc_and_xrays(world)


@pytest.mark.process
def test_a_dropped_connection_mid_burst_loses_nothing(
    sqlite_clinic: tuple[World, int, int], tmp_path: Path
) -> None:
    world, _, _ = sqlite_clinic
    folders = [f.name for f in world.patients_with_folders("Drop", 5)]

    with serving(world, tmp_path) as samba, workstation(samba) as client:
        relay = Relay(samba.port)
        try:
            settings = smb_settings(samba, port=relay.port)
            with running(world, mode="smb", smb=settings, open_settle_seconds=0.5) as daemon:
                for j in range(20):
                    if j == 8:
                        relay.cut()  # the network drops in the middle of the burst
                    for folder in folders:
                        client.write(f"D/{folder}/d{j}.jpg", b"x" * 500)
                wait_for(lambda: daemon.rescans["smb-resubscribed"] >= 1)
                wait_for(lambda: len(world.documents()) >= 100)
                assert relay.accepted >= 2
        finally:
            relay.close()

    counts = by_name(world)
    assert len(counts) == 100
    assert max(counts.values()) == 1


@pytest.mark.process
def test_a_server_refusing_notifications_is_polled(
    sqlite_clinic: tuple[World, int, int], tmp_path: Path
) -> None:
    world, misc, _ = sqlite_clinic
    pat = world.add_patient("No", "Notify", "NoNotify1")
    world.folder("NoNotify1")

    with (
        serving(world, tmp_path, notify=False) as samba,
        workstation(samba) as client,
        capture_logs() as logs,
        running(world, mode="smb", smb=smb_settings(samba), poll_interval=0.2) as daemon,
    ):
        assert daemon.mode == "polling"
        client.write("N/NoNotify1/a.jpg", b"a")
        wait_for(lambda: len(world.documents(pat)) == 1)

    (warning,) = [e for e in logs if e["event"] == "watch.fallback_to_polling"]
    assert "does not allow change notifications" in warning["reason"]
    assert [(d["FileName"], d["DocCategory"]) for d in world.documents(pat)] == [("a.jpg", misc)]


@pytest.mark.process
def test_too_many_changes_for_the_notify_buffer_are_caught_by_a_rescan(
    sqlite_clinic: tuple[World, int, int], tmp_path: Path
) -> None:
    world, _, xrays = sqlite_clinic
    folders = [f.name for f in world.patients_with_folders("Flood", 5)]

    with serving(world, tmp_path) as samba, workstation(samba) as client:
        relay = Relay(samba.port)
        try:
            settings = smb_settings(samba, port=relay.port, notify_buffer=1024)
            with (
                capture_logs() as logs,
                running(world, mode="smb", smb=settings, open_settle_seconds=0.5) as daemon,
            ):
                # The daemon's answers wait in the relay, so it cannot ask again: the server
                # piles up more changes than 1 KB of records holds.
                relay.hold()
                for j in range(12):
                    for folder in folders:
                        client.write(f"F/{folder}/_{xrays}_f{j}.jpg", b"x" * 100)
                relay.release()
                wait_for(lambda: daemon.rescans["event-queue-overflow"] >= 1)
                wait_for(lambda: len(world.documents()) >= 60)
        finally:
            relay.close()

    # The server said so (STATUS_NOTIFY_ENUM_DIR), and the connection was never lost.
    events = [e["event"] for e in logs]
    assert "smb.too_many_changes" in events
    assert "smb.connection_lost" not in events

    counts = by_name(world)
    assert len(counts) == 60
    assert max(counts.values()) == 1
    assert {d["DocCategory"] for d in world.documents()} == {xrays}


def watch(root: Path, settings: SmbSettings) -> None:
    handler = QueueingHandler(str(root), queue.SimpleQueue(), IgnoreRules(()))
    watching = start_watching(
        root,
        handler,
        settings=WatcherSettings(mode="smb", smb=settings),
        ignore=IgnoreRules(()),
        on_overflow=lambda: None,
        on_resubscribed=lambda: None,
    )
    watching.stop()


@pytest.mark.process
def test_a_wrong_password_is_a_clear_error_without_the_password(
    sqlite_clinic: tuple[World, int, int], tmp_path: Path
) -> None:
    world, _, _ = sqlite_clinic
    with serving(world, tmp_path) as samba:
        wrong = tmp_path / "wrong"
        wrong.write_text("Not-" + samba.password + "\n")
        settings = smb_settings(samba).model_copy(update={"password_file": wrong})

        with capture_logs() as logs, pytest.raises(WatchError) as caught:
            watch(world.root, settings)

    message = str(caught.value)
    assert f"the server refused the login of {samba.username!r}" in message
    assert samba.password not in message
    assert samba.password not in repr(logs)


def test_an_unreachable_server_fails_within_the_deadline(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("Pw-unused-here\n")
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = SmbSettings(
        server="127.0.0.1",
        port=port,
        share="OpenDentImages",
        username="od",
        password_file=password,
        timeout=5,
    )
    started = time.monotonic()

    with pytest.raises(WatchError, match=r"\\\\127.0.0.1\\OpenDentImages"):
        watch(tmp_path, settings)

    assert time.monotonic() - started < 30


def test_smb_mode_without_its_share_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {}, atoz_path=tmp_path, watcher={"mode": "smb"})

    assert 'mode "smb" needs a [watcher.smb] table' in str(caught.value)


def smb_check(world: World, settings: SmbSettings) -> CheckResult:
    full = Settings(
        atoz_path=world.root,
        database_url=world.url,
        state_dir=world.state,
        watcher=WatcherSettings(mode="smb", smb=settings),
    )
    results = {r.name: r for r in run_checks(full, world.engine)}
    assert results["inotify watches"].detail == "not used (smb)"
    return results["smb notifications"]


@pytest.mark.process
def test_check_subscribes_once(sqlite_clinic: tuple[World, int, int], tmp_path: Path) -> None:
    world, _, _ = sqlite_clinic
    with serving(world, tmp_path) as samba:
        found = smb_check(world, smb_settings(samba))

    assert found.ok, found.detail
    assert f"logged in as {samba.username!r}, subscribed" in found.detail
    assert samba.password not in found.detail


@pytest.mark.process
def test_check_names_a_refused_login_without_the_password(
    sqlite_clinic: tuple[World, int, int], tmp_path: Path
) -> None:
    world, _, _ = sqlite_clinic
    with serving(world, tmp_path) as samba:
        wrong = tmp_path / "wrong"
        wrong.write_text("Not-" + samba.password + "\n")
        found = smb_check(world, smb_settings(samba).model_copy(update={"password_file": wrong}))
        refused = smb_check(world, smb_settings(samba).model_copy(update={"share": "Nope"}))

    assert not found.ok
    assert "the server refused the login" in found.detail
    assert samba.password not in found.detail
    assert not refused.ok
    assert "no such share" in refused.detail


@pytest.mark.process
def test_check_says_a_refusing_server_is_polled(
    sqlite_clinic: tuple[World, int, int], tmp_path: Path
) -> None:
    world, _, _ = sqlite_clinic
    with serving(world, tmp_path, notify=False) as samba:
        found = smb_check(world, smb_settings(samba))

    assert found.ok
    assert "does not allow change notifications" in found.detail
    assert found.detail.endswith("the daemon will poll instead")
