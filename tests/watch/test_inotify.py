"""The lean inotify emitter (atoz_watcher/watch/inotify.py), with real inotify in temporary
folders: which folders it watches, and the watchdog events it turns the kernel's into."""

from __future__ import annotations

import errno
import os
import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from atoz_watcher.rules.ignore import IgnoreRules
from atoz_watcher.watch import inotify as inotify_module
from atoz_watcher.watch.inotify import TreeEmitter, TreeObserver, parse

DEADLINE_S = 20.0
IGNORE = IgnoreRules(["Thumbnails", "@eaDir", "*.tmp"])


class Recorder(FileSystemEventHandler):
    def __init__(self) -> None:
        self.events: queue.SimpleQueue[FileSystemEvent] = queue.SimpleQueue()
        self.seen: list[FileSystemEvent] = []

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.events.put(event)

    def wait_for(self, condition: Callable[[FileSystemEvent], bool]) -> FileSystemEvent:
        """The first event (seen before or arriving by the deadline) that meets ``condition``."""
        for event in self.seen:
            if condition(event):
                return event
        deadline = time.monotonic() + DEADLINE_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(event)
            if condition(event):
                return event
        pytest.fail(f"no such event within {DEADLINE_S} s; saw {self.seen}")

    def drain(self) -> list[FileSystemEvent]:
        while True:
            try:
                self.seen.append(self.events.get_nowait())
            except queue.Empty:
                return self.seen


def is_(
    kind: type[FileSystemEvent], src: Path | str, dest: Path | str | None = None
) -> Callable[[FileSystemEvent], bool]:
    def check(event: FileSystemEvent) -> bool:
        if type(event) is not kind or event.src_path != os.fspath(src):
            return False
        return dest is None or event.dest_path == os.fspath(dest)

    return check


class Watched:
    def __init__(self, root: Path, overflows: list[int]) -> None:
        self.root = root
        self.recorder = Recorder()
        self.overflows = overflows
        self.observer = TreeObserver(
            max_depth=2, skip_dir=IGNORE, on_overflow=lambda: overflows.append(1)
        )
        self.observer.schedule(self.recorder, str(root), recursive=True)

    @property
    def emitter(self) -> TreeEmitter:
        (emitter,) = self.observer.emitters
        assert isinstance(emitter, TreeEmitter)
        return emitter


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "OpenDentImages"
    for folder in ("A/AbbottAnn1", "A/AbbottAnn1/Thumbnails", "B/BakerBob2", "@eaDir/x", "C"):
        (root / folder).mkdir(parents=True)
    return root


@pytest.fixture
def watched(tree: Path) -> Iterator[Watched]:
    watched = Watched(tree, [])
    watched.observer.start()
    try:
        yield watched
    finally:
        watched.observer.stop()
        watched.observer.join(10)


def test_watches_the_root_letters_and_patient_folders_only(watched: Watched) -> None:
    # root, A, A/AbbottAnn1, B, B/BakerBob2, C: not Thumbnails (depth 3), not @eaDir (ignored)
    assert watched.emitter.watched == 6


def test_a_file_written_in_a_patient_folder(watched: Watched) -> None:
    path = watched.root / "A/AbbottAnn1/scan.jpg"
    path.write_bytes(b"jpeg")
    watched.recorder.wait_for(is_(FileClosedEvent, path))
    path.unlink()
    watched.recorder.wait_for(is_(FileDeletedEvent, path))


def test_nothing_from_thumbnails_or_ignored_folders(watched: Watched) -> None:
    (watched.root / "A/AbbottAnn1/Thumbnails/scan.jpg").write_bytes(b"t")
    (watched.root / "@eaDir/x/scan.jpg").write_bytes(b"t")
    marker = watched.root / "B/BakerBob2/marker.jpg"
    marker.write_bytes(b"m")  # events come in order: once this one is here, so would they be
    watched.recorder.wait_for(is_(FileClosedEvent, marker))
    paths = {e.src_path for e in watched.recorder.drain()}
    assert not any("Thumbnails" in p or "@eaDir" in p for p in paths), paths


def test_renames_inside_into_and_out_of_the_tree(watched: Watched, tmp_path: Path) -> None:
    folder = watched.root / "A/AbbottAnn1"
    (folder / "scan.tmp").write_bytes(b"x")
    (folder / "scan.tmp").rename(folder / "scan.jpg")
    watched.recorder.wait_for(is_(FileMovedEvent, folder / "scan.tmp", folder / "scan.jpg"))

    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"y")
    outside.rename(folder / "in.jpg")  # complete when it arrives: a move with no source
    watched.recorder.wait_for(is_(FileMovedEvent, "", folder / "in.jpg"))

    (folder / "in.jpg").rename(tmp_path / "back.jpg")
    watched.recorder.wait_for(is_(FileDeletedEvent, folder / "in.jpg"))


def test_a_new_letter_folder_with_a_patient_folder_is_watched(watched: Watched) -> None:
    patient = watched.root / "D/DoeDan3"
    patient.mkdir(parents=True)
    watched.recorder.wait_for(is_(DirCreatedEvent, watched.root / "D"))
    # Made before or after the letter folder's watch: either its own event or the emitter's
    # announcement while watching the new letter folder's contents.
    watched.recorder.wait_for(is_(DirCreatedEvent, patient))
    (patient / "scan.jpg").write_bytes(b"d")
    watched.recorder.wait_for(is_(FileClosedEvent, patient / "scan.jpg"))
    assert watched.emitter.watched == 8


def test_a_folder_moved_in_is_watched_with_what_it_holds(watched: Watched, tmp_path: Path) -> None:
    staged = tmp_path / "staged/E"
    (staged / "EvansEve4").mkdir(parents=True)
    staged.rename(watched.root / "E")
    watched.recorder.wait_for(is_(DirMovedEvent, "", watched.root / "E"))
    watched.recorder.wait_for(is_(DirCreatedEvent, watched.root / "E/EvansEve4"))
    (watched.root / "E/EvansEve4/scan.jpg").write_bytes(b"e")
    watched.recorder.wait_for(is_(FileClosedEvent, watched.root / "E/EvansEve4/scan.jpg"))


def test_a_renamed_patient_folder_reports_its_new_paths(watched: Watched) -> None:
    old, new = watched.root / "B/BakerBob2", watched.root / "B/BakerRobert2"
    old.rename(new)
    watched.recorder.wait_for(is_(DirMovedEvent, old, new))
    (new / "scan.jpg").write_bytes(b"b")
    watched.recorder.wait_for(is_(FileClosedEvent, new / "scan.jpg"))
    assert watched.emitter.watched == 6


def test_a_folder_moved_out_is_no_longer_watched(watched: Watched, tmp_path: Path) -> None:
    gone = watched.root / "B/BakerBob2"
    gone.rename(tmp_path / "elsewhere")
    marker = watched.root / "A/AbbottAnn1/marker.jpg"
    marker.write_bytes(b"m")
    watched.recorder.wait_for(is_(FileClosedEvent, marker))
    (tmp_path / "elsewhere/late.jpg").write_bytes(b"l")
    marker2 = watched.root / "A/AbbottAnn1/marker2.jpg"
    marker2.write_bytes(b"m")
    watched.recorder.wait_for(is_(FileClosedEvent, marker2))
    assert not any("late.jpg" in e.src_path for e in watched.recorder.drain())
    assert watched.emitter.watched == 5


def test_a_folder_moved_below_a_patient_folder_is_not_watched(watched: Watched) -> None:
    (watched.root / "C/CarrCal5").mkdir()
    watched.recorder.wait_for(is_(DirCreatedEvent, watched.root / "C/CarrCal5"))
    assert watched.emitter.watched == 7
    (watched.root / "C/CarrCal5").rename(watched.root / "A/AbbottAnn1/old")
    watched.recorder.wait_for(
        is_(DirMovedEvent, watched.root / "C/CarrCal5", watched.root / "A/AbbottAnn1/old")
    )
    assert watched.emitter.watched == 6


def test_stop_releases_the_watches(tree: Path) -> None:
    watched = Watched(tree, [])
    watched.observer.start()
    emitter = watched.emitter
    watched.observer.stop()
    watched.observer.join(10)
    assert not emitter.is_alive()
    assert emitter.watched == 0


def _no_watches_for_patient_folders(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """The kernel's answer when fs.inotify.max_user_watches is used up (ENOSPC), for folders
    two levels below ``root``; lowering the real limit would starve every other process of
    this user."""
    add = inotify_module._Inotify.add
    patient_depth = os.fsencode(root).count(b"/") + 2

    def limited(self: inotify_module._Inotify, path: bytes) -> int:
        if path.count(b"/") >= patient_depth:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fsdecode(path))
        return add(self, path)

    monkeypatch.setattr(inotify_module._Inotify, "add", limited)


def test_out_of_watches_at_start_fails_the_start(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a silent gap: the caller hears it (and ``auto`` falls back to polling)."""
    _no_watches_for_patient_folders(monkeypatch, tree)
    watched = Watched(tree, [])
    with pytest.raises(OSError) as raised:
        watched.observer.start()
    assert raised.value.errno == errno.ENOSPC
    watched.observer.stop()


def test_out_of_watches_later_is_logged(watched: Watched, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_watches_for_patient_folders(monkeypatch, watched.root)
    with capture_logs() as logs:
        (watched.root / "C/CarrCal5").mkdir()
        watched.recorder.wait_for(is_(DirCreatedEvent, watched.root / "C/CarrCal5"))
    (line,) = [e for e in logs if e["event"] == "watch.folder_not_watched"]
    assert line["path"] == str(watched.root / "C/CarrCal5")
    assert "max_user_watches" in line["reason"]


def test_parse_reads_names_and_padding() -> None:
    header = inotify_module._HEADER
    buffer = header.pack(1, 0x100, 0, 16) + b"scan.jpg".ljust(16, b"\0")
    buffer += header.pack(2, 0x8000, 7, 0)
    assert list(parse(buffer)) == [(1, 0x100, 0, b"scan.jpg"), (2, 0x8000, 7, b"")]
