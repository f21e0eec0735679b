"""The daemon with real inotify (and polling) in temporary folders, on both databases."""

from __future__ import annotations

import base64
import errno
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from structlog.testing import capture_logs

from atoz_watcher.app.daemon import Daemon
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.sections import ThumbnailSettings
from atoz_watcher.imaging.jobs import job_for
from atoz_watcher.ingest import registrar as registrar_module
from atoz_watcher.ingest import rescan as rescan_module
from atoz_watcher.rules.ignore import DEFAULT_IGNORE
from atoz_watcher.system.contained import Folder
from atoz_watcher.system.sdnotify import Notifier
from atoz_watcher.watch import observer as observer_module
from atoz_watcher.watch.observer import WatchError
from tests.support.clinics import misc_and_xrays
from tests.support.daemons import by_name, running, settings_for
from tests.support.images import jpeg
from tests.support.waiting import wait_for
from tests.support.worlds import World


@pytest.fixture
def clinic(world: World) -> tuple[World, int, int]:
    return misc_and_xrays(world)


def test_dropped_file_is_registered_once(clinic: tuple[World, int, int]) -> None:
    world, _, xrays = clinic
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")

    with running(world) as daemon:
        assert daemon.mode == "native"
        (folder / f"_{xrays}_pano.jpg").write_bytes(b"jpeg")
        wait_for(lambda: len(world.documents(pat)) == 1)
        wait_for(lambda: not (folder / f"_{xrays}_pano.jpg").exists())

    (doc,) = world.documents(pat)
    assert (doc["FileName"], doc["DocCategory"]) == ("pano.jpg", xrays)
    assert sorted(p.name for p in folder.iterdir()) == ["pano.jpg"]


def test_burst_of_1000_files_into_100_folders(clinic: tuple[World, int, int]) -> None:
    world, misc, xrays = clinic
    folders = world.patients_with_folders("Burst", 100)

    with running(world):
        for j in range(10):
            for folder in folders:
                name = f"_{xrays}_b{j}.jpg" if j % 2 else f"b{j}.jpg"
                (folder / name).write_bytes(b"x" * 100)
        wait_for(lambda: len(world.documents()) >= 1000)

    counts = by_name(world)
    assert len(counts) == 1000
    assert max(counts.values()) == 1
    categories = Counter(d["DocCategory"] for d in world.documents())
    assert categories == {misc: 500, xrays: 500}
    assert not list(world.root.rglob("_*"))


def test_file_written_in_chunks_is_registered_after_its_last_chunk(
    clinic: tuple[World, int, int],
) -> None:
    world, _, xrays = clinic
    pat = world.add_patient("Slow", "Scanner", "SlowScanner1")
    folder = world.folder("SlowScanner1")
    chunk = b"c" * 100_000

    with running(world):
        with (folder / f"_{xrays}_slow.tif").open("wb") as handle:
            for _ in range(5):
                # The writer is slow on purpose: 5 chunks over 3 s, the file held open.
                assert world.documents(pat) == []
                handle.write(chunk)
                handle.flush()
                time.sleep(0.6)
        wait_for(lambda: len(world.documents(pat)) == 1)

    (doc,) = world.documents(pat)
    assert doc["FileName"] == "slow.tif"
    assert (folder / "slow.tif").stat().st_size == 5 * len(chunk)


def test_temp_then_rename_is_registered_once_under_its_final_name(
    clinic: tuple[World, int, int],
) -> None:
    world, misc, _ = clinic
    pat = world.add_patient("Temp", "Rename", "TempRename1")
    folder = world.folder("TempRename1")

    with running(world):
        temp = folder / "scan.jpg.tmp"
        temp.write_bytes(b"partial")
        with temp.open("ab") as handle:
            handle.write(b" and the rest")
        temp.rename(folder / "scan.jpg")
        wait_for(lambda: len(world.documents(pat)) == 1)

    assert [(d["FileName"], d["DocCategory"]) for d in world.documents(pat)] == [("scan.jpg", misc)]


def test_new_patient_folder_is_watched(clinic: tuple[World, int, int]) -> None:
    world, misc, _ = clinic
    pat = world.add_patient("New", "Comer")

    with running(world):
        folder = world.root / "N" / f"NewComer{pat}"
        folder.mkdir(parents=True)  # a new letter folder and a new patient folder
        (folder / "first.jpg").write_bytes(b"1")
        wait_for(lambda: len(world.documents(pat)) == 1)
        (folder / "second.jpg").write_bytes(b"2")
        wait_for(lambda: len(world.documents(pat)) == 2)

    assert world.image_folder(pat) == f"NewComer{pat}"
    assert {d["FileName"] for d in world.documents(pat)} == {"first.jpg", "second.jpg"}
    assert {d["DocCategory"] for d in world.documents(pat)} == {misc}


def test_files_present_before_start_are_caught_up(clinic: tuple[World, int, int]) -> None:
    world, _, xrays = clinic
    pat = world.add_patient("Early", "Bird", "EarlyBird1")
    folder = world.folder("EarlyBird1")
    for i in range(20):
        (folder / f"_{xrays}_{i}.jpg").write_bytes(b"x")

    with running(world):
        wait_for(lambda: len(world.documents(pat)) == 20)

    assert {d["DocCategory"] for d in world.documents(pat)} == {xrays}


def test_polling_mode_registers_files(clinic: tuple[World, int, int]) -> None:
    world, _, xrays = clinic
    pat = world.add_patient("Net", "Share", "NetShare1")
    folder = world.folder("NetShare1")

    with running(world, mode="polling", poll_interval=0.2) as daemon:
        assert daemon.mode == "polling"
        (folder / f"_{xrays}_a.jpg").write_bytes(b"a")
        new = world.root / "Q" / "QuietQ9"
        wait_for(lambda: len(world.documents(pat)) == 1)

    assert [d["FileName"] for d in world.documents(pat)] == ["a.jpg"]
    assert not new.exists()


def test_ignored_names_are_left_alone(clinic: tuple[World, int, int]) -> None:
    world, _, _ = clinic
    pat = world.add_patient("Nas", "Litter", "NasLitter1")
    folder = world.folder("NasLitter1")

    with running(world):
        for name in ("a.tmp", "b.part", "c.crdownload", "~$d.docx", "._e.jpg"):
            (folder / name).write_bytes(b"x")
        (folder / "@eaDir").mkdir()
        (folder / "@eaDir" / "f.jpg").write_bytes(b"x")
        (folder / "real.jpg").write_bytes(b"x")
        wait_for(lambda: len(world.documents(pat)) == 1)

    assert [d["FileName"] for d in world.documents(pat)] == ["real.jpg"]
    assert (folder / "a.tmp").exists()


def test_unmatched_folder_is_left_alone(clinic: tuple[World, int, int]) -> None:
    world, misc, xrays = clinic
    pat = world.add_patient("Known", "One", "KnownOne1")
    stray = world.folder("Stranger77")

    with running(world):
        (stray / f"_{xrays}_x.jpg").write_bytes(b"x")
        (world.folder("KnownOne1") / "y.jpg").write_bytes(b"y")
        wait_for(lambda: len(world.documents(pat)) == 1)

    assert world.documents() == world.documents(pat)
    assert (stray / f"_{xrays}_x.jpg").exists()
    assert misc


def test_unreadable_file_is_retried_once_readable(
    clinic: tuple[World, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permission denied, then fixed. Root reads every file, so the denial is simulated where
    the registrar asks (os.access); the daemon's retry with backoff is the real one."""
    world, misc, _ = clinic
    pat = world.add_patient("Locked", "Out", "LockedOut1")
    folder = world.folder("LockedOut1")
    locked = folder / "locked.jpg"
    denied = threading.Event()
    denied.set()
    real_readable = registrar_module._readable

    def readable(in_folder: Folder, name: str) -> bool:
        if denied.is_set() and name == locked.name:
            return False
        return real_readable(in_folder, name)

    monkeypatch.setattr(registrar_module, "_readable", readable)
    with running(world) as daemon:
        locked.write_bytes(b"x")
        (folder / "open.jpg").write_bytes(b"y")
        wait_for(lambda: len(world.documents(pat)) == 1)  # the readable one
        wait_for(lambda: daemon.retrying(str(locked)) >= 1)
        assert [d["FileName"] for d in world.documents(pat)] == ["open.jpg"]
        denied.clear()  # the admin fixes the permissions
        wait_for(lambda: len(world.documents(pat)) == 2)

    assert {(d["FileName"], d["DocCategory"]) for d in world.documents(pat)} == {
        ("open.jpg", misc),
        ("locked.jpg", misc),
    }


@contextmanager
def inotify_limit(name: str, value: int) -> Iterator[None]:
    """Set /proc/sys/fs/inotify/<name> for the block (it applies to instances made then)."""
    path = Path("/proc/sys/fs/inotify") / name
    try:
        old = path.read_text()
        path.write_text(str(value))
    except OSError as exc:
        pytest.skip(f"cannot set {path}: {exc.strerror}")
    try:
        yield
    finally:
        path.write_text(old)


def test_event_queue_overflow_triggers_a_full_rescan(clinic: tuple[World, int, int]) -> None:
    world, _, xrays = clinic
    folders = world.patients_with_folders("Flood", 10)

    with ExitStack() as stack:
        with inotify_limit("max_queued_events", 32):
            daemon = stack.enter_context(running(world))
        # The limit is back; the daemon's inotify instance keeps its 32-event queue.
        for j in range(40):
            for folder in folders:
                (folder / f"_{xrays}_{j}.jpg").write_bytes(b"x")
        wait_for(lambda: daemon.rescans["event-queue-overflow"] >= 1)
        wait_for(lambda: len(world.documents()) == 400)

    assert {d["DocCategory"] for d in world.documents()} == {xrays}
    assert not list(world.root.rglob("_*"))


def test_a_rescan_asked_for_during_another_keeps_its_reason(
    clinic: tuple[World, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An overflow while the catch-up scan runs is rescanned after it, counted as an overflow
    (it was relabelled "periodic" when the catch-up scan ended)."""
    world, _, _ = clinic
    inside, release = threading.Event(), threading.Event()
    original = rescan_module.Rescanner.run

    def held_first(self: rescan_module.Rescanner, **kwargs: Any) -> Any:
        if not inside.is_set():
            inside.set()
            assert release.wait(30), "the test never released the catch-up scan"
        return original(self, **kwargs)

    monkeypatch.setattr(rescan_module.Rescanner, "run", held_first)
    with running(world) as daemon:
        assert inside.wait(30), "no catch-up scan"
        daemon.request_rescan("event-queue-overflow")
        release.set()
        wait_for(lambda: daemon.rescans["event-queue-overflow"] == 1)

    assert daemon.rescans["startup"] == 1


def test_auto_mode_falls_back_to_polling(
    clinic: tuple[World, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, misc, _ = clinic
    pat = world.add_patient("Fall", "Back", "FallBack1")

    class NoWatchesLeft(observer_module.TreeObserver):
        def start(self) -> None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(observer_module, "TreeObserver", NoWatchesLeft)
    with running(world, mode="auto", poll_interval=0.2) as daemon:
        assert daemon.mode == "polling"
        (world.folder("FallBack1") / "a.jpg").write_bytes(b"a")
        wait_for(lambda: len(world.documents(pat)) == 1)

    assert world.documents(pat)[0]["DocCategory"] == misc


def test_native_mode_refuses_to_fall_back(
    clinic: tuple[World, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, _, _ = clinic

    class NoWatchesLeft(observer_module.TreeObserver):
        def start(self) -> None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(observer_module, "TreeObserver", NoWatchesLeft)
    daemon = Daemon(
        Components.from_settings(settings_for(world, mode="native"), world.engine),
        notifier=Notifier(None),
    )
    with pytest.raises(WatchError, match="max_user_watches"):
        daemon.run()


def test_files_wait_for_an_image_category(world: World) -> None:
    """No visible image category yet (an error for Open Dental's import): nothing is dropped;
    the files are registered once somebody adds one."""
    pat = world.add_patient("No", "Category", "NoCategory1")
    folder = world.folder("NoCategory1")
    (folder / "early.jpg").write_bytes(b"e")

    with running(world) as daemon:
        (folder / "late.jpg").write_bytes(b"l")
        wait_for(lambda: daemon.rescans["startup"] >= 1)
        assert world.documents(pat) == []
        misc = world.add_category("Misc", order=0)
        wait_for(lambda: len(world.documents(pat)) == 2)

    assert {(d["FileName"], d["DocCategory"]) for d in world.documents(pat)} == {
        ("early.jpg", misc),
        ("late.jpg", misc),
    }


PHOTO = jpeg((640, 480), (30, 160, 60), quality=90)


def test_dropped_jpeg_gets_its_thumbnail(clinic: tuple[World, int, int]) -> None:
    world, _, xrays = clinic
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    thumbnail = folder / "Thumbnails" / "pano.jpg"

    with running(world):
        (folder / f"_{xrays}_pano.jpg").write_bytes(PHOTO)
        wait_for(thumbnail.exists)

    assert [d["FileName"] for d in world.documents(pat)] == ["pano.jpg"]
    with Image.open(thumbnail) as image:
        assert (image.format, image.size) == ("JPEG", (100, 100))
        red, green, blue = image.getpixel((50, 50))  # type: ignore[misc]
        assert (green > 120, red < 80, blue < 100) == (True, True, True)
        band = image.getpixel((50, 5))  # 640x480: white bands above and below (JPEG: near)
        assert min(band) >= 250  # type: ignore[arg-type]


def test_damaged_image_is_registered_without_thumbnail_and_the_worker_goes_on(
    clinic: tuple[World, int, int],
) -> None:
    world, _, _ = clinic
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")

    with capture_logs() as logs, running(world):
        (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
        (folder / "empty.png").write_bytes(b"")
        wait_for(lambda: len(world.documents(pat)) == 2)
        (folder / "good.jpg").write_bytes(PHOTO)
        wait_for((folder / "Thumbnails" / "good.jpg").exists)

    assert sorted(d["FileName"] for d in world.documents(pat)) == [
        "broken.jpg",
        "empty.png",
        "good.jpg",
    ]
    assert sorted(p.name for p in (folder / "Thumbnails").iterdir()) == ["good.jpg"]
    failed = sorted(Path(e["path"]).name for e in logs if e["event"] == "thumbnail.failed")
    assert failed == ["broken.jpg", "empty.png"]


def test_thumbnails_missing_at_start_are_built(clinic: tuple[World, int, int]) -> None:
    world, misc, _ = clinic
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    (folder / "old.jpg").write_bytes(PHOTO)
    world.add_document(pat, "old.jpg", misc)

    with running(world):
        wait_for((folder / "Thumbnails" / "old.jpg").exists)


def test_a_job_handed_to_on_stored_is_rendered_by_the_daemons_queue_and_counted(
    clinic: tuple[World, int, int],
) -> None:
    world, _, _ = clinic
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    # Left alone by the watcher: only the job handed on (as the API's Upload hands it) makes
    # its thumbnail.
    settings = settings_for(world, ignore=(*DEFAULT_IGNORE, "stored.jpg"))
    components = Components.from_settings(settings, world.engine)
    metrics = components.metrics
    daemon = Daemon(components, notifier=Notifier(None))
    thread = threading.Thread(target=daemon.run, name="test-daemon")
    thread.start()
    try:
        wait_for(lambda: daemon.mode != "")
        stored = folder / "stored.jpg"
        stored.write_bytes(jpeg())
        job = job_for(stored, stamp=datetime.now(), pat_num=pat, doc_num=None)
        assert job is not None
        daemon.on_stored(job)
        wait_for(job.dest.exists)
        made = {"outcome": "made"}
        wait_for(lambda: metrics.registry.get_sample_value("atoz_thumbnails_total", made) == 1)
    finally:
        daemon.handle_exit()
        thread.join(15)
    assert world.documents(pat) == []


def test_thumbnails_can_be_switched_off(clinic: tuple[World, int, int]) -> None:
    world, _, _ = clinic
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    settings = settings_for(world).model_copy(
        update={"thumbnails": ThumbnailSettings(enabled=False)}
    )
    daemon = Daemon(Components.from_settings(settings, world.engine), notifier=Notifier(None))
    thread = threading.Thread(target=daemon.run, name="test-daemon")
    thread.start()
    try:
        wait_for(lambda: daemon.mode != "")
        (folder / "pano.jpg").write_bytes(PHOTO)
        wait_for(lambda: len(world.documents(pat)) == 1)
    finally:
        daemon.handle_exit()
        thread.join(15)
    assert not (folder / "Thumbnails").exists()


def test_placeholder_rows_are_materialised_by_the_running_daemon(
    clinic: tuple[World, int, int],
) -> None:
    world, misc, _ = clinic
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    png = folder.parent / "source.png"
    Image.new("RGB", (200, 100), (250, 0, 0)).save(png)
    payload = base64.b64encode(png.read_bytes()).decode()
    doc = world.add_document(pat, "", misc, Note=f"_rawBase64_:.png_{payload}")

    with running(world):
        wait_for(lambda: world.documents(pat)[0]["Note"] == "")
        wait_for((folder / "Thumbnails" / f"SmithJohn{doc}.png").exists)

    (row,) = world.documents(pat)
    assert (row["DocNum"], row["FileName"]) == (doc, f"SmithJohn{doc}.png")
    assert (folder / f"SmithJohn{doc}.png").read_bytes() == png.read_bytes()
