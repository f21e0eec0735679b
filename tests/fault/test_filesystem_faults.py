"""File-system faults, on SQLite and MariaDB: each ends with a clear log line and, once the
cause is gone, every file registered.

Real faults where root can make them: ``chattr +i`` (which even root cannot rename past) for
a patient folder that refuses changes, a 1 MB tmpfs for a full disk. The event queue overflow
is covered by tests/test_daemon.py::test_event_queue_overflow_triggers_a_full_rescan.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from structlog.testing import capture_logs

from atoz_watcher import registrar as registrar_module
from tests.conftest import World
from tests.test_api import UPLOAD, api_settings, b64, make_clinic, serving
from tests.test_daemon import running, wait_for


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not available")
    return found


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(out, "JPEG")
    return out.getvalue()


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

    def rename(src: Path, dst: Path) -> None:
        if src.name.endswith("vanishing.jpg"):
            src.unlink()  # deleted after the batch was planned, just before its rename
        real(src, dst)

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
