"""The scanner inbox in `atoz-watcher run`: the daemon watches the inbox folders, waits for a
file to settle, and files it (routed, split, unmatched), on each database."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from watchdog.events import (
    DirCreatedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
)

from atoz_watcher.app.daemon import Daemon
from atoz_watcher.app.inboxes import InboxEvents
from atoz_watcher.app.wiring import Components, ignore_rules
from atoz_watcher.config.sections import InboxFolder, InboxSettings, WatcherSettings
from atoz_watcher.config.settings import Settings
from atoz_watcher.documents.writer import Created, DocumentWriter, NewDocument
from atoz_watcher.errors import DatabaseUnavailableError
from atoz_watcher.imaging.coversheet import CoverSheet
from atoz_watcher.system.sdnotify import Notifier
from atoz_watcher.watch.handler import Event, Kind
from tests.inbox.conftest import Desk, make_desk, orphans
from tests.support import scans
from tests.support.waiting import wait_for
from tests.support.worlds import World

CHUNK = 16 * 1024


def _settings(desk: Desk, **watcher: Any) -> Settings:
    options: dict[str, Any] = {"settle_seconds": 0.3, "rescan_interval": 3600.0}
    options.update(watcher)
    world = desk.world
    return Settings(
        atoz_path=world.root,
        database_url=world.url,
        state_dir=world.state,
        watcher=WatcherSettings(**options),
        thumbnails={"enabled": False},
        inbox=InboxSettings(folders=(InboxFolder(path=desk.folder),)),
    )


@contextmanager
def running(
    desk: Desk, *, prepare: Callable[[Components], None] | None = None, **watcher: Any
) -> Iterator[tuple[Daemon, Components]]:
    components = Components.from_settings(_settings(desk, **watcher), desk.world.engine)
    if prepare is not None:
        prepare(components)
    daemon = Daemon(components, notifier=Notifier(None))
    thread = threading.Thread(target=daemon.run, name="test-daemon")
    thread.start()
    try:
        wait_for(lambda: daemon.mode != "")
        yield daemon, components
    finally:
        daemon.handle_exit()
        thread.join(15)
        assert not thread.is_alive(), "the daemon did not stop within 15 s"


def _counted(components: Components, outcome: str, detail: str) -> float:
    value = components.metrics.registry.get_sample_value(
        "atoz_inbox_total", {"outcome": outcome, "detail": detail}
    )
    return value or 0.0


def _sheet(pat_num: int) -> scans.Cover:
    return scans.Cover(CoverSheet(pat_num, "Test Patient", date(1980, 1, 2)))


def _pdf(items: list[scans.Cover | int], path: Path) -> Path:
    return scans.write_pdf(scans.batch_pages(items, dpi=150), path, dpi=150)


def _drop_in_chunks(source: Path, dest: Path) -> None:
    """Write ``source`` to ``dest`` as a scanner does: a growing file, chunk by chunk."""
    data = source.read_bytes()
    with dest.open("wb") as out:
        for start in range(0, len(data), CHUNK):
            out.write(data[start : start + CHUNK])
            out.flush()
            threading.Event().wait(0.02)  # a scanner's pace, not synchronisation


def _batch(desk: Desk, path: Path) -> Path:
    anna, ben, clara = desk.patients
    return _pdf([_sheet(anna), 1, 2, _sheet(ben), 3, 4, 5, _sheet(clara), 6], path)


def _filed(desk: Desk, count: int) -> bool:
    return len(desk.world.documents()) >= count


@pytest.fixture
def desk(world: World, tmp_path: Path) -> Desk:
    return make_desk(world, tmp_path / "scans")


def test_a_batch_a_token_file_and_an_unmatched_one_are_filed_by_the_running_daemon(desk):
    anna, ben, clara = desk.patients
    batch = _batch(desk, desk.folder.parent / "batch-source.pdf")
    token = _pdf([7], desk.folder.parent / "token-source.pdf")
    nothing = _pdf([8], desk.folder.parent / "nothing-source.pdf")

    with running(desk) as (daemon, components):
        assert daemon.mode == "native"
        _drop_in_chunks(batch, desk.folder / "scan0001.pdf")
        wait_for(lambda: _filed(desk, 3), timeout=60)
        _drop_in_chunks(token, desk.folder / f"PAT{ben}_consent.pdf")
        _drop_in_chunks(nothing, desk.folder / "scan0002.pdf")
        wait_for(lambda: _counted(components, "unmatched", "no-route") == 1, timeout=60)
        wait_for(lambda: _counted(components, "routed", "token") == 1, timeout=60)

        assert _counted(components, "split", "cover-sheet") == 1

    assert desk.pages_of(anna) == [[1, 2]]
    assert desk.pages_of(ben) == [[3, 4, 5], [7]]
    assert desk.pages_of(clara) == [[6]]
    assert len(desk.world.documents()) == 4
    assert "scan0001.pdf" in desk.in_("_Done")
    assert f"PAT{ben}_consent.pdf" in desk.in_("_Done")
    assert desk.in_("_Unmatched") == ["scan0002.pdf", "scan0002.pdf.reason.json"]
    assert desk.in_("_Work") == []
    assert [p.name for p in desk.folder.iterdir() if p.is_file()] == []
    assert orphans(desk.world) == []


def test_files_waiting_at_start_are_taken_by_the_catch_up(world):
    # An inbox inside the A-to-Z root, with an old original in its _Done/: the tree's handlers
    # must not take it for a letter folder, nor its subfolders for patient folders.
    desk = make_desk(world, world.root / "Inbox")
    anna, ben, _ = desk.patients
    _batch(desk, desk.folder / "waiting.pdf")
    _pdf([9], desk.folder / f"PAT{anna}.pdf")
    done = desk.folder / "_Done"
    done.mkdir()
    _pdf([10], done / f"PAT{ben}_old.pdf")
    # An original filed long ago (keep_days is 30): swept out of _Done/ at start.
    (done / "old.pdf").write_bytes(b"%PDF-1.4 old")
    (done / "old.pdf.done.json").write_text(json.dumps({"filed_at": "2000-01-01T00:00:00"}))
    nested = desk.folder / "front desk"
    nested.mkdir()
    _pdf([11], nested / f"PAT{ben}_nested.pdf")

    with capture_logs() as logs, running(desk) as (_, components):
        wait_for(lambda: _counted(components, "routed", "token") == 2, timeout=60)
        wait_for(lambda: _counted(components, "split", "cover-sheet") == 1, timeout=60)
        skipped = [
            sample
            for family in components.metrics.registry.collect()
            if family.name == "atoz_files_skipped"
            for sample in family.samples
        ]
        assert skipped == []

    assert sorted(desk.pages_of(anna)) == [[1, 2], [9]]
    assert sorted(desk.pages_of(ben)) == [[3, 4, 5], [11]]
    assert (done / f"PAT{ben}_old.pdf").exists()  # the inbox's own: never filed
    assert not (done / "old.pdf").exists()
    assert not (done / "old.pdf.done.json").exists()
    assert len(desk.world.documents()) == 5
    rescans = [e for e in logs if e["event"] == "rescan.finished"]
    assert rescans
    assert all(e["unmatched"] == 0 for e in rescans)
    assert not [e for e in logs if e["event"] in ("folder.unmatched", "folder.skipped")]
    assert orphans(desk.world) == []


def test_the_polling_daemon_watches_the_inbox_too(desk):
    anna = desk.patients[0]
    source = _pdf([5], desk.folder.parent / "source.pdf")

    with running(desk, mode="polling", poll_interval=0.2) as (daemon, components):
        assert daemon.mode == "polling"
        _drop_in_chunks(source, desk.folder / f"PAT{anna}.pdf")
        wait_for(lambda: _counted(components, "routed", "token") == 1, timeout=60)

    assert desk.pages_of(anna) == [[5]]


def test_an_inbox_inside_the_root_is_ignored_by_the_trees_rules(tmp_path):
    root = tmp_path / "atoz"
    settings = Settings(
        atoz_path=root,
        database_url="sqlite://",
        state_dir=tmp_path / "state",
        inbox=InboxSettings(
            folders=(InboxFolder(path=root / "Scans" / "Desk"), InboxFolder(path=tmp_path / "x"))
        ),
    )
    ignore = ignore_rules(settings)

    assert ignore(["Scans", "Desk"])
    assert ignore(["Scans", "Desk", "_Done"])
    assert ignore(("Scans", "Desk", "scan.pdf"))
    assert not ignore(["Scans", "Deskmate", "a.pdf"])
    assert not ignore(["S", "SmithJohn1", "a.jpg"])
    assert ignore(["S", "SmithJohn1", "a.tmp"])  # watcher.ignore still applies


class FlakyWriter(DocumentWriter):
    """The database is away for the first ``failures`` documents."""

    def __init__(self, *args: Any, failures: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures

    def create(self, new: NewDocument, data: Any, **kwargs: Any) -> Created:
        if self.failures > 0:
            self.failures -= 1
            raise DatabaseUnavailableError("the database went away")
        return super().create(new, data, **kwargs)


def test_an_outage_while_filing_is_retried_and_nothing_is_lost(desk):
    anna, ben, _ = desk.patients
    token = _pdf([3], desk.folder.parent / "token.pdf")
    batch = _pdf([_sheet(anna), 1, _sheet(ben), 2], desk.folder.parent / "batch.pdf")
    writers: list[FlakyWriter] = []

    def flaky(components: Components) -> None:
        writer = FlakyWriter(components.engine, components.storage, lock_timeout_s=5, failures=2)
        writers.append(writer)
        components.__dict__["writer"] = writer  # the cached part the inbox is built with

    with capture_logs() as logs, running(desk, prepare=flaky) as (_, components):
        _drop_in_chunks(token, desk.folder / f"PAT{anna}_x.pdf")
        _drop_in_chunks(batch, desk.folder / "scan.pdf")
        wait_for(lambda: _filed(desk, 3) and desk.in_("_Work") == [], timeout=60)
        assert writers[0].failures == 0
        assert components.metrics.registry.get_sample_value(
            "atoz_errors_total", {"kind": "database"}
        )

    assert sorted(desk.pages_of(anna)) == [[1], [3]]
    assert desk.pages_of(ben) == [[2]]
    assert [e for e in logs if e["event"] == "inbox.retry"]
    assert [p.name for p in desk.folder.iterdir() if p.is_file()] == []
    assert desk.in_("_Unmatched") == []
    assert orphans(desk.world) == []


def test_events_in_the_inboxs_own_folders_are_ignored(desk):
    out: queue.SimpleQueue[Event] = queue.SimpleQueue()
    handler = InboxEvents(desk.inbox(), out)
    inbox = desk.folder
    events = [
        FileCreatedEvent(str(inbox / "_Done" / "a.pdf")),
        FileClosedEvent(str(inbox / "_Unmatched" / "b.pdf")),
        FileClosedEvent(str(inbox / "sub" / "_Work" / "c.pdf")),
        FileCreatedEvent(str(inbox / ".scan.tmp")),
        FileCreatedEvent(str(inbox.parent / "elsewhere.pdf")),
        DirCreatedEvent(str(inbox / "new")),
        FileCreatedEvent(str(inbox / "scan.pdf")),
        FileClosedEvent(str(inbox / "front desk" / "scan.pdf")),
        FileMovedEvent(str(inbox / "scan.pdf"), str(inbox / "_Work" / "scan.pdf")),
        FileDeletedEvent(str(inbox / "gone.pdf")),
    ]
    for event in events:
        handler.on_any_event(event)

    seen = []
    while not out.empty():
        seen.append(out.get_nowait())
    assert seen == [
        Event(Kind.TOUCH, str(inbox / "scan.pdf")),
        Event(Kind.CLOSED, str(inbox / "front desk" / "scan.pdf")),
        Event(Kind.GONE, str(inbox / "scan.pdf")),
        Event(Kind.GONE, str(inbox / "gone.pdf")),
    ]
