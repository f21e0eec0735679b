"""Which filesystem holds the root (/proc/self/mountinfo), what `check` says of it, and what
`auto` makes of it."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from atoz_watcher.app.check import format_results, run_checks
from atoz_watcher.config.sections import WatcherSettings
from atoz_watcher.config.settings import Settings
from atoz_watcher.rules.ignore import IgnoreRules
from atoz_watcher.watch.filesystem import Filesystem, filesystem_of, parse_mountinfo
from atoz_watcher.watch.handler import Event, QueueingHandler
from atoz_watcher.watch.observer import start_watching
from tests.support.worlds import World

# The shape of real lines (Debian 12): root on ext4, a CIFS share, an NFS export, sshfs.
MOUNTINFO = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
30 22 0:40 / /mnt/Open\\040Dent rw shared:20 - cifs //winsrv/OpenDentImages rw,vers=3.1.1
31 22 0:41 / /srv/nfs rw,relatime shared:21 - nfs4 nas:/export/images rw,vers=4.2
32 22 0:42 / /home/od/remote rw,nosuid shared:22 - fuse.sshfs od@nas:/images rw,user_id=0
"""


def mountinfo_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mountinfo"
    path.write_text(text)
    return path


def test_mount_points_are_unescaped_and_typed() -> None:
    mounts = {m.mount_point: m for m in parse_mountinfo(MOUNTINFO)}

    assert set(mounts) == {"/", "/mnt/Open Dent", "/srv/nfs", "/home/od/remote"}
    share = mounts["/mnt/Open Dent"]
    assert (share.type, share.source, share.kind, share.is_smb) == (
        "cifs",
        "//winsrv/OpenDentImages",
        "network",
        True,
    )
    assert mounts["/srv/nfs"].kind == "network"
    assert mounts["/home/od/remote"].kind == "network"
    assert mounts["/"].kind == "local"
    assert Filesystem("fuse.mergerfs", "/pool", "pool").kind == "fuse"


def test_the_deepest_mount_over_a_path_wins(tmp_path: Path) -> None:
    info = mountinfo_file(tmp_path, MOUNTINFO)

    assert filesystem_of(Path("/mnt/Open Dent/A/SmithJohn1"), mountinfo=info).type == "cifs"
    assert filesystem_of(Path("/mnt/Open Dentist"), mountinfo=info).type == "ext4"
    assert filesystem_of(Path("/srv/nfs"), mountinfo=info).type == "nfs4"


def test_the_real_mount_table() -> None:
    assert filesystem_of(Path("/proc/self")).type == "proc"


def test_unreadable_mount_table_is_unknown(tmp_path: Path) -> None:
    found = filesystem_of(tmp_path, mountinfo=tmp_path / "absent")

    assert (found.type, found.kind, found.inotify_sees_all) == ("unknown", "unknown", False)


def settings_for(world: World, mode: str) -> Settings:
    return Settings(
        atoz_path=world.root,
        database_url=world.url,
        state_dir=world.state,
        watcher=WatcherSettings(mode=mode),  # type: ignore[arg-type]
    )


def cifs_at(tmp_path: Path, root: Path) -> Path:
    line = f"40 22 0:50 / {root} rw - cifs //winsrv/OpenDentImages rw,vers=3.1.1\n"
    return mountinfo_file(tmp_path, MOUNTINFO + line)


@pytest.mark.parametrize("mode", ["auto", "polling", "smb"])
def test_check_on_a_cifs_mount(bare_world: World, tmp_path: Path, mode: str) -> None:
    bare_world.add_category("X-Rays", order=0)
    info = cifs_at(tmp_path, bare_world.root)
    settings = settings_for(bare_world, "auto").model_copy(
        update={"watcher": WatcherSettings.model_construct(mode=mode)}
    )

    results = {r.name: r for r in run_checks(settings, bare_world.engine, mountinfo=info)}

    detail = results["filesystem"].detail
    assert results["filesystem"].ok, detail
    assert detail.startswith("cifs (network, //winsrv/OpenDentImages on ")
    assert "inotify does not hear what other machines write here" in detail
    assert "smb (the server's change notifications" in detail
    expected = "polling" if mode == "auto" else mode
    assert results["inotify watches"].detail == f"not used ({expected})"


def test_check_fails_native_mode_on_a_network_share(bare_world: World, tmp_path: Path) -> None:
    bare_world.add_category("X-Rays", order=0)
    bare_world.root.chmod(0o2775)  # a practice's root: its group writes (checked apart)
    info = cifs_at(tmp_path, bare_world.root)

    results = run_checks(settings_for(bare_world, "native"), bare_world.engine, mountinfo=info)

    failed = [r for r in results if not r.ok]
    assert [r.name for r in failed] == ["filesystem"], format_results(results)
    assert 'set watcher.mode = "auto"' in failed[0].detail


def test_check_on_a_local_disk(bare_world: World, tmp_path: Path) -> None:
    bare_world.add_category("X-Rays", order=0)
    info = mountinfo_file(tmp_path, MOUNTINFO)

    results = {r.name: r for r in run_checks(settings_for(bare_world, "auto"), bare_world.engine)}
    fake = {
        r.name: r
        for r in run_checks(settings_for(bare_world, "auto"), bare_world.engine, mountinfo=info)
    }

    assert fake["filesystem"].detail == "ext4 (local, /dev/vda1 on /): native fits; mode auto"
    assert results["filesystem"].ok
    assert "native fits" in results["filesystem"].detail


def test_auto_polls_on_a_network_filesystem(tmp_path: Path) -> None:
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    ignore = IgnoreRules(())
    handler = QueueingHandler(str(tmp_path), events, ignore)
    seen: list[Path] = []

    def network(path: Path) -> Filesystem:
        seen.append(path)
        return Filesystem("smb3", "/mnt/od", "//winsrv/OpenDentImages")

    watching = start_watching(
        tmp_path,
        handler,
        settings=WatcherSettings(mode="auto", poll_interval=0.1),
        ignore=ignore,
        on_overflow=lambda: None,
        on_resubscribed=lambda: None,
        filesystem=network,
    )
    watching.stop()

    assert (watching.mode, seen) == ("polling", [tmp_path])
