"""File-system faults, on SQLite and MariaDB: each ends with a clear log line and, once the
cause is gone, every file registered.

Real faults where root can make them: ``chattr +i`` (which even root cannot rename past) for
a patient folder that refuses changes, a 1 MB tmpfs for a full disk, a real rename of a folder
from inside a rescan (its progress callback) for a folder renamed while being scanned. The
event queue overflow is covered by
tests/app/test_daemon.py::test_event_queue_overflow_triggers_a_full_rescan.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from structlog.testing import capture_logs

from atoz_watcher.ingest import registrar as registrar_module
from atoz_watcher.ingest import scan as scan_module
from atoz_watcher.ingest.registrar import Gone
from atoz_watcher.ingest.rescan import FOLDER_VANISHED, Rescanner, Summary
from atoz_watcher.rules.layout import folder_name, patient_dir
from atoz_watcher.rules.matching import Unmatched
from atoz_watcher.system.contained import Folder
from tests.support.api import UPLOAD, api_settings, b64, serving
from tests.support.clinics import make_clinic
from tests.support.daemons import running
from tests.support.images import jpeg
from tests.support.waiting import wait_for
from tests.support.worlds import World


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not available")
    return found


@contextmanager
def immutable(folder: Path) -> Iterator[None]:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not available")
    done = subprocess.run([_tool("chattr"), "+i", str(folder)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i refused here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run([_tool("chattr"), "-i", str(folder)], check=True)


@contextmanager
def full_tmpfs(where: Path) -> Iterator[Path]:
    """A 1 MB tmpfs on ``where``, filled up; yields the filler file (delete it to free space)."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [_tool("mount"), "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        filler = where / ".filler"
        try:
            with filler.open("wb", buffering=0) as handle:
                while True:
                    handle.write(b"\0" * 4096)
        except OSError:
            pass  # ENOSPC: full
        yield filler
    finally:
        subprocess.run([_tool("umount"), "-l", str(where)], check=True)


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == name]


def test_permission_denied_on_a_patient_folder_then_fixed(bare_world: World) -> None:
    world = bare_world
    world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    pat = world.add_patient("Locked", "Folder", "LockedFolder1")
    folder = world.folder("LockedFolder1")
    locked = folder / f"_{xrays}_locked.jpg"
    locked.write_bytes(b"x")
    with capture_logs() as logs, immutable(folder), running(world) as daemon:
        wait_for(lambda: daemon.retrying(str(locked)) >= 1)
        assert world.documents(pat) == []
    skipped = events(logs, "file.skipped")
    assert any(
        e["reason"] == "rename-failed" and e["detail"] == "Operation not permitted" for e in skipped
    ), skipped
    assert events(logs, "registration.retry")
    # The admin lifts the lock: the next start (or the retry) registers the file.
    with running(world) as daemon:
        wait_for(lambda: len(world.documents(pat)) == 1)
    (doc,) = world.documents(pat)
    assert (doc["FileName"], doc["DocCategory"]) == ("locked.jpg", xrays)
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["locked.jpg"]


def test_permission_denied_lifted_while_running(bare_world: World) -> None:
    world = bare_world
    xrays = world.add_category("X-Rays", order=0)
    pat = world.add_patient("Later", "Fixed", "LaterFixed1")
    folder = world.folder("LaterFixed1")
    locked = folder / f"_{xrays}_later.jpg"
    locked.write_bytes(b"x")
    with capture_logs() as logs, running(world) as daemon:
        with immutable(folder):
            wait_for(lambda: daemon.retrying(str(locked)) >= 1)
        # Lifted: the daemon's own retry (2 s backoff) registers it, no restart.
        wait_for(lambda: len(world.documents(pat)) == 1, timeout=30)
    assert events(logs, "registration.retry")
    assert [d["FileName"] for d in world.documents(pat)] == ["later.jpg"]


def test_file_deleted_between_event_and_registration(
    bare_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = bare_world
    xrays = world.add_category("X-Rays", order=0)
    pat = world.add_patient("Gone", "Soon", "GoneSoon1")
    folder = world.folder("GoneSoon1")
    real = registrar_module.rename_noreplace

    def rename(src: Path, dst: Path, *, folder: Folder) -> None:
        if src.name.endswith("vanishing.jpg"):
            src.unlink()  # deleted after the batch was planned, just before its rename
        real(src, dst, folder=folder)

    monkeypatch.setattr(registrar_module, "rename_noreplace", rename)
    with capture_logs() as logs, running(world):
        (folder / f"_{xrays}_vanishing.jpg").write_bytes(b"v")
        (folder / f"_{xrays}_kept.jpg").write_bytes(b"k")
        (folder / "quick.jpg").write_bytes(b"q")
        (folder / "quick.jpg").unlink()  # deleted before it settled
        (folder / "last.jpg").write_bytes(b"l")
        wait_for(lambda: len(world.documents(pat)) == 2)
        wait_for(lambda: any(e.get("reason") == "vanished" for e in events(logs, "file.skipped")))
    assert sorted(d["FileName"] for d in world.documents(pat)) == ["kept.jpg", "last.jpg"]
    assert not [e for e in logs if e.get("log_level") == "error"]


def test_disk_full_while_writing_a_thumbnail(bare_world: World) -> None:
    world = bare_world
    xrays = world.add_category("X-Rays", order=0)
    pat = world.add_patient("Full", "Disk", "FullDisk1")
    folder = world.folder("FullDisk1")
    picture = jpeg()
    with capture_logs() as logs, full_tmpfs(folder / "Thumbnails") as filler:
        with running(world):
            (folder / f"_{xrays}_first.jpg").write_bytes(picture)
            wait_for(lambda: len(world.documents(pat)) == 1)
            wait_for(lambda: len(events(logs, "thumbnail.failed")) > 0)
            filler.unlink()  # space again
            (folder / "second.jpg").write_bytes(picture)
            wait_for((folder / "Thumbnails" / "second.jpg").exists)
        (failed,) = events(logs, "thumbnail.failed")
        assert "No space left on device" in failed["reason"]
        assert sorted(d["FileName"] for d in world.documents(pat)) == ["first.jpg", "second.jpg"]
        # The next start's backfill builds the thumbnail the full disk prevented.
        with running(world):
            wait_for((folder / "Thumbnails" / "first.jpg").exists)
        assert not list((folder / "Thumbnails").glob(".*.tmp"))  # no partial file left


def test_disk_full_while_writing_an_upload(bare_world: World) -> None:
    world = bare_world
    clinic = make_clinic(world)
    body = {"PatNum": clinic.pat, "rawBase64": b64(b"u" * 8192), "extension": ".jpg"}
    with capture_logs() as logs, full_tmpfs(clinic.folder) as filler:
        with serving(api_settings(world), world) as api:
            full = api.post(UPLOAD, json=body)
            filler.unlink()
            fine = api.post(UPLOAD, json=body)
        files = sorted(p.name for p in clinic.folder.iterdir())
    assert full.status_code == 503, full.text
    assert "No space left on device" in full.json()
    assert any("No space left" in str(e.get("error")) for e in events(logs, "api.store_failed"))
    assert fine.status_code == 201, fine.text
    assert files == [fine.json()["FileName"]]  # no temporary left by the failed one
    assert [d["FileName"] for d in world.documents(clinic.pat)] == [fine.json()["FileName"]]


# -- a patient folder renamed while a whole-tree rescan walks the tree -------------------------
#
# The rename is made from the rescan's own progress callback (called after each folder), so it
# lands in a chosen window every time: "before-listing" renames the folder after the walk took
# its list of folders but before it reached this one; "after-listing" renames it after its files
# were listed but before their batch is registered. Where it is renamed to, by Open Dental's
# rules (a patient's folder is patient.ImageFolder; only while that is empty does the folder Open
# Dental would compute from the current name belong to the patient; a renamed patient keeps the
# folder, Open Dental never moves it):
#
# - "unknown-name": to a name nobody owns. Reported unmatched until renamed back.
# - "patients-new-name": the patient was renamed in Open Dental (Maiden -> Married) and someone
#   renamed the folder to follow. ImageFolder still names the old folder, so the new name is not
#   the patient's (Open Dental would look in the old one): unmatched, never adopted, until the
#   admin points ImageFolder at it.
# - "computed-name": the patient's ImageFolder is still empty, so the folder Open Dental would
#   compute from the current name is theirs; the folder is renamed from the old (maiden) name to
#   it. The next rescan adopts it and registers its files.

RENAME_TARGETS = ("unknown-name", "patients-new-name", "computed-name")
RENAME_WINDOWS = ("before-listing", "after-listing")


@dataclass(frozen=True)
class Dropped:
    pat_num: int
    name: str  # as dropped, prefix and all
    final: str  # the name Open Dental gives it
    category: int
    content: bytes


def _tree_audit(world: World, dropped: list[Dropped], folder_of: dict[int, str]) -> list[str]:
    """Every dropped file: one row, the right name and category, the file in its patient's
    folder (``folder_of``: PatNum -> ImageFolder) with its content; nothing else in the tree,
    no row without its file, no prefixed name left."""
    rows = world.documents()
    count = Counter((r["PatNum"], r["FileName"]) for r in rows)
    category = {(r["PatNum"], r["FileName"]): r["DocCategory"] for r in rows}
    problems = [f"duplicated: {n} rows for {k}" for k, n in count.items() if n > 1]
    expected = {(d.pat_num, d.final): d for d in dropped}
    for key, d in expected.items():
        path = patient_dir(world.root, folder_of[d.pat_num]) / d.final
        if count[key] == 0:
            problems.append(f"lost: no row for {d.name} of patient {d.pat_num}")
        elif category[key] != d.category:
            problems.append(f"misplaced: {key} in category {category[key]}, not {d.category}")
        if not path.is_file() or path.read_bytes() != d.content:
            problems.append(f"misplaced: {d.name} is not at {path.relative_to(world.root)}")
    problems += [f"row without its file: {k}" for k in count if k not in expected]
    on_disk = {p for p in world.root.rglob("*") if p.is_file()}
    wanted = {patient_dir(world.root, folder_of[d.pat_num]) / d.final for d in dropped}
    problems += [f"unexpected file: {p.relative_to(world.root)}" for p in on_disk - wanted]
    return problems


@dataclass
class MovingTree:
    """Eight neighbours (A... and Z...) with a file each, and Mary's folder with five files."""

    world: World
    pat: int  # Mary
    old: str  # her folder's name when the rescan starts
    new: str  # the name it is renamed to
    dropped: list[Dropped]
    folder_of: dict[int, str]  # PatNum -> the folder its files must end up in

    @property
    def moving(self) -> Path:
        return patient_dir(self.world.root, self.old)

    @property
    def renamed_to(self) -> Path:
        return patient_dir(self.world.root, self.new)

    def names(self, pat_num: int) -> list[str]:
        return sorted(d.name for d in self.dropped if d.pat_num == pat_num)

    def audit(self) -> list[str]:
        return _tree_audit(self.world, self.dropped, self.folder_of)


def moving_tree(world: World, target: str) -> MovingTree:
    misc = world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    picture = jpeg()
    dropped: list[Dropped] = []
    folder_of: dict[int, str] = {}

    def drop(pat_num: int, name: str, final: str, category: int) -> None:
        content = picture + f"{pat_num}/{name}".encode()
        (world.folder(folder_of[pat_num]) / name).write_bytes(content)
        dropped.append(Dropped(pat_num, name, final, category, content))

    for lname in ("Aa", "Zz"):  # before and after M in the walk's order
        for i in range(4):
            pat_num = world.add_patient(lname, f"P{i}", f"{lname}P{i}x")
            folder_of[pat_num] = f"{lname}P{i}x"
            drop(pat_num, f"_{xrays}_scan.jpg", "scan.jpg", xrays)
    # Mary Maiden, now Mary Married in Open Dental.
    if target == "computed-name":
        pat = world.add_patient("Married", "Mary")  # ImageFolder still empty
        old = f"MaidenMary{pat}"  # the folder a bridge made under her maiden name
    else:
        old = "MaidenMary1"
        pat = world.add_patient("Married", "Mary", old)
    new = f"{old}-old" if target == "unknown-name" else folder_name("Married", "Mary", pat)
    folder_of[pat] = old
    drop(pat, f"_{xrays}_pano.jpg", "pano.jpg", xrays)
    drop(pat, f"_{misc}_bite.jpg", "bite.jpg", misc)
    drop(pat, "plain.jpg", "plain.jpg", misc)
    drop(pat, f"_{xrays}_plain.jpg", "xplain.jpg", xrays)  # clashes with plain.jpg
    drop(pat, "letter.pdf", "letter.pdf", misc)
    # Where Mary's files must end: the folder renamed back, or under the new name.
    folder_of[pat] = old if target == "unknown-name" else new
    tree = MovingTree(world, pat, old, new, dropped, folder_of)
    assert tree.renamed_to.parent == tree.moving.parent  # the same letter folder: M
    return tree


def rescan_renaming(tree: MovingTree, window: str) -> tuple[Summary, list[dict[str, Any]]]:
    """A whole-tree rescan during which Mary's folder is renamed, in ``window``."""
    root = tree.world.root
    walk = [p for letter in sorted(root.iterdir()) for p in sorted(letter.iterdir())]
    # The progress callback runs after each folder: after the one before Mary's, or hers.
    at = walk.index(tree.moving) + (0 if window == "before-listing" else 1)
    renamed = threading.Event()

    def progress(done: int, total: int) -> None:
        assert total == len(walk)
        if done == at and not renamed.is_set():
            tree.moving.rename(tree.renamed_to)
            renamed.set()

    world = tree.world
    rescanner = Rescanner(world.engine, world.registrar(), root, batch_size=50, progress=progress)
    with capture_logs() as logs:
        summary = rescanner.run()
    assert renamed.is_set()
    return summary, logs


@pytest.mark.parametrize("window", RENAME_WINDOWS)
@pytest.mark.parametrize("target", RENAME_TARGETS)
def test_patient_folder_renamed_while_a_rescan_walks_the_tree(
    bare_world: World, target: str, window: str
) -> None:
    tree = moving_tree(bare_world, target)
    world, pat, mary = tree.world, tree.pat, tree.names(tree.pat)
    # 1. The rescan during which the folder is renamed: no crash, the neighbours registered,
    # Mary's files left alone (none registered from a path outside its folder) and reported.
    summary, logs = rescan_renaming(tree, window)
    assert world.documents(pat) == []
    assert len(world.documents()) == 8
    assert sorted(p.name for p in tree.renamed_to.iterdir()) == mary
    if target == "computed-name":
        # Not Mary's folder when the walk reached it (her name is Married now): unmatched.
        assert summary.unmatched == [(f"M/{tree.old}", Unmatched.NO_PATIENT.value)]
    elif window == "before-listing":
        assert summary.unmatched == [(f"M/{tree.old}", FOLDER_VANISHED)]
        assert summary.skipped == Counter({FOLDER_VANISHED: 1})
        (line,) = events(logs, "folder.skipped")
        assert (line["path"], line["reason"]) == (str(tree.moving), FOLDER_VANISHED)
        assert (line["log_level"], line["detail"]) == ("warning", "No such file or directory")
    else:
        # Listed, then renamed before its batch: every file "vanished", one line each.
        assert summary.skipped == Counter({Gone.VANISHED.value: len(mary)}), summary
        vanished = [e for e in events(logs, "file.skipped") if e["patnum"] == pat]
        assert sorted(Path(e["path"]).name for e in vanished) == mary
        assert {(e["reason"], e["log_level"]) for e in vanished} == {("vanished", "warning")}
    assert not [e for e in logs if e.get("log_level") == "error"]

    # 2. The next rescan, the folder still renamed: a name that is not Mary's under Open Dental's
    # rules is reported and never adopted; the name Open Dental computes for her while her
    # ImageFolder is empty is adopted, and her files registered.
    summary = world.rescan()
    if target == "computed-name":
        assert (summary.adopted, summary.registered) == ([(pat, tree.new)], len(mary))
        assert world.image_folder(pat) == tree.new
    else:
        assert summary.unmatched == [(f"M/{tree.new}", Unmatched.NO_PATIENT.value)]
        assert (summary.registered, world.documents(pat)) == (0, [])
        assert world.image_folder(pat) == tree.old
        # 3. The cause gone: the folder renamed back, or ImageFolder pointed at the new name.
        if target == "unknown-name":
            tree.renamed_to.rename(tree.moving)
        else:
            with world.engine.begin() as conn:
                conn.execute(
                    text("UPDATE patient SET ImageFolder = :f WHERE PatNum = :p"),
                    {"f": tree.new, "p": pat},
                )
        summary = world.rescan()
        assert (summary.registered, summary.unmatched) == (len(mary), [])
    # Every file registered exactly once, in its own folder; a further rescan adds nothing.
    assert tree.audit() == []
    again = world.rescan()
    assert (again.registered, again.unmatched, sum(again.skipped.values())) == (0, [], 0)
    assert tree.audit() == []


def test_letter_folder_renamed_while_a_rescan_lists_it(
    bare_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window between listing the root and listing a letter folder: renamed there, the
    letter folder is reported (it used to be skipped without a word), and its files registered
    once it is back."""
    tree = moving_tree(bare_world, "unknown-name")
    world, letter = tree.world, tree.moving.parent
    aside = letter.with_name("M-aside")
    real = scan_module._subfolders
    renamed = threading.Event()

    def subfolders(path: str) -> tuple[list[os.DirEntry[str]], list[os.DirEntry[str]]]:
        found = real(path)
        if Path(path) == world.root and not renamed.is_set():
            letter.rename(aside)  # the root is listed; M is not yet
            renamed.set()
        return found

    monkeypatch.setattr(scan_module, "_subfolders", subfolders)
    with capture_logs() as logs:
        summary = world.rescan()
    monkeypatch.undo()
    assert renamed.is_set()
    assert summary.unmatched == [("M", FOLDER_VANISHED)]
    assert (summary.registered, summary.skipped) == (8, Counter({FOLDER_VANISHED: 1}))
    (line,) = events(logs, "folder.skipped")
    assert (line["path"], line["reason"]) == (str(letter), FOLDER_VANISHED)
    # Still aside: its patient folder sits in the wrong letter folder for its name.
    summary = world.rescan()
    assert summary.unmatched == [(f"M-aside/{tree.old}", Unmatched.WRONG_LETTER.value)]
    aside.rename(letter)
    summary = world.rescan()
    assert (summary.registered, summary.unmatched) == (5, [])
    assert tree.audit() == []
