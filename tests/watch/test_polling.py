"""Our own polling: a pass lists only the patient folders whose time changed; the daemon in
polling mode registers what it finds once."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from atoz_watcher.rules.ignore import IgnoreRules
from atoz_watcher.watch.polling import TreePoller
from tests.support.daemons import by_name, running
from tests.support.waiting import wait_for
from tests.support.worlds import World


def poller(root: Path, found: list[str], *, full_every: int = 0) -> TreePoller:
    """A poller past its first listing and the one that confirms it."""
    watcher = TreePoller(
        str(root),
        found.append,
        interval=3600,
        ignore=IgnoreRules(("Thumbnails", "*.tmp")),
        full_every=full_every,
    )
    watcher.poll(report=False)
    watcher.poll()
    return watcher


def tree(root: Path) -> Path:
    """Two letters, three patient folders with a file each; returns one patient folder."""
    for rel in ("A/AbbaA1", "A/AdamsB2", "B/BakerC3"):
        (root / rel).mkdir(parents=True)
        (root / rel / "old.jpg").write_bytes(b"o")
    return root / "A" / "AbbaA1"


def keep_time(folder: Path, mtime_ns: int) -> None:
    """Set a folder's time back, as a server whose folder times lie would leave it."""
    os.utime(folder, ns=(mtime_ns, mtime_ns))


def test_the_first_pass_finds_nothing_and_an_idle_pass_lists_no_folder(tmp_path: Path) -> None:
    tree(tmp_path)
    found: list[str] = []
    watcher = TreePoller(
        str(tmp_path), found.append, interval=3600, ignore=IgnoreRules(()), full_every=0
    )

    first = watcher.poll(report=False)
    confirming = watcher.poll()  # a file written just after the first listing is not lost
    idle = watcher.poll()

    assert (first.folders, first.listed, found) == (3, 3, [])
    assert (confirming.listed, confirming.found) == (3, 0)
    assert (idle.folders, idle.listed, idle.found) == (3, 0, 0)
    assert watcher.folders == 3


def test_new_files_new_folders_and_new_letters_are_found_once(tmp_path: Path) -> None:
    folder = tree(tmp_path)
    found: list[str] = []
    watcher = poller(tmp_path, found)

    (folder / "new.jpg").write_bytes(b"n")
    (tmp_path / "B" / "BrownD4").mkdir()
    (tmp_path / "B" / "BrownD4" / "x.jpg").write_bytes(b"x")
    (tmp_path / "C" / "CarrE5").mkdir(parents=True)
    (tmp_path / "C" / "CarrE5" / "y.jpg").write_bytes(b"y")
    (folder / "Thumbnails").mkdir()
    (folder / "Thumbnails" / "new.jpg").write_bytes(b"t")
    (tmp_path / "Thumbnails").mkdir()  # ignored at any depth
    changed = watcher.poll()
    again = watcher.poll()  # the changed folders are listed once more, to be sure
    settled = watcher.poll()

    assert sorted(found) == sorted(
        [
            str(folder / "new.jpg"),
            str(tmp_path / "B" / "BrownD4" / "x.jpg"),
            str(tmp_path / "C" / "CarrE5" / "y.jpg"),
        ]
    )
    assert (changed.listed, again.listed, settled.listed) == (3, 3, 0)
    assert (again.found, settled.found) == (0, 0)


def test_a_file_added_in_the_same_tick_as_the_listing_is_found(tmp_path: Path) -> None:
    """The folder's time does not move (coarse timestamps): the re-listing after a change
    finds the file anyway."""
    folder = tree(tmp_path)
    found: list[str] = []
    watcher = poller(tmp_path, found)

    (folder / "one.jpg").write_bytes(b"1")
    watcher.poll()
    seen = folder.stat().st_mtime_ns
    (folder / "two.jpg").write_bytes(b"2")
    keep_time(folder, seen)
    watcher.poll()

    assert [Path(p).name for p in found] == ["one.jpg", "two.jpg"]


def test_folders_whose_time_lies_are_caught_by_the_full_pass(tmp_path: Path) -> None:
    folder = tree(tmp_path)
    found: list[str] = []
    watcher = poller(tmp_path, found, full_every=4)  # passes 0 and 1
    seen = folder.stat().st_mtime_ns

    (folder / "hidden.jpg").write_bytes(b"h")
    keep_time(folder, seen)
    quiet = [watcher.poll(), watcher.poll()]  # passes 2 and 3: the time says no change
    full = watcher.poll()  # pass 4 lists every folder

    assert [s.found for s in quiet] == [0, 0]
    assert (full.listed, full.found) == (3, 1)
    assert found == [str(folder / "hidden.jpg")]


def test_an_unlistable_root_keeps_what_is_known(tmp_path: Path) -> None:
    root = tmp_path / "share"
    folder = tree(root)
    found: list[str] = []
    watcher = poller(root, found)

    root.rename(tmp_path / "unmounted")
    gone = watcher.poll()
    (tmp_path / "unmounted").rename(root)
    back = watcher.poll()
    (folder / "after.jpg").write_bytes(b"a")
    watcher.poll()

    assert (gone.folders, back.found, watcher.folders) == (0, 0, 3)
    assert found == [str(folder / "after.jpg")]


# -- the daemon in polling mode ----------------------------------------------------------------


def test_polling_registers_new_files_and_folders_once(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    old = world.folder("OldFolder1")
    world.add_patient("Old", "Folder", "OldFolder1")
    new_pat = world.add_patient("New", "Patient")
    letter_pat = world.add_patient("Zed", "Letter")

    with running(world, mode="polling", poll_interval=0.2, open_settle_seconds=0.5) as daemon:
        assert daemon.mode == "polling"
        (old / f"_{xrays}_in_old.jpg").write_bytes(b"o")
        new = world.root / "N" / f"NewPatient{new_pat}"
        new.mkdir(parents=True)
        (new / "in_new.jpg").write_bytes(b"n")
        zed = world.root / "Z" / f"ZedLetter{letter_pat}"
        zed.mkdir(parents=True)  # Z/ does not exist yet: a new letter folder
        (zed / "in_new_letter.jpg").write_bytes(b"z")
        temp = old / "scan.jpg.tmp"
        temp.write_bytes(b"partial")
        temp.rename(old / "scan.jpg")
        wait_for(lambda: len(world.documents()) >= 4)

    counts = by_name(world)
    assert max(counts.values()) == 1
    assert sorted(name for _, name in counts) == [
        "in_new.jpg",
        "in_new_letter.jpg",
        "in_old.jpg",
        "scan.jpg",
    ]
    assert Counter(d["DocCategory"] for d in world.documents()) == {misc: 3, xrays: 1}
    assert not (old / "scan.jpg.tmp").exists()
    assert world.image_folder(new_pat) == f"NewPatient{new_pat}"


def test_removed_folders_are_forgotten(tmp_path: Path) -> None:
    tree(tmp_path)
    found: list[str] = []
    watcher = poller(tmp_path, found)

    (tmp_path / "A" / "AdamsB2" / "old.jpg").unlink()
    (tmp_path / "A" / "AdamsB2").rmdir()
    (tmp_path / "B" / "BakerC3" / "old.jpg").unlink()
    (tmp_path / "B" / "BakerC3").rmdir()
    (tmp_path / "B").rmdir()
    after = watcher.poll()

    assert (after.folders, watcher.folders, found) == (1, 1, [])
