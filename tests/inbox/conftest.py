"""An inbox over a test world: categories, patients, one inbox folder outside the A-to-Z root."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from atoz_watcher.config.sections import InboxFolder, InboxSettings
from atoz_watcher.db.activity import NO_RECORD, Recorder
from atoz_watcher.documents.writer import DocumentWriter
from atoz_watcher.imaging.jobs import ThumbJob
from atoz_watcher.inbox import Inbox, OutcomeKind
from atoz_watcher.inbox.filer import OnStep, no_step
from atoz_watcher.storage import LocalAtoZ, Storage
from tests.support import scans
from tests.support.worlds import World


@dataclass
class Desk:
    """A world with an inbox: ``categories`` by name, ``patients`` (PatNums) in order."""

    world: World
    folder: Path
    categories: dict[str, int]
    patients: list[int]
    outcomes: list[tuple[OutcomeKind, str]] = field(default_factory=list)
    thumbnails: list[ThumbJob] = field(default_factory=list)
    now: datetime = datetime(2026, 12, 6, 9, 0, 0)

    def inbox(
        self,
        *,
        category: int | str | None = None,
        on_step: OnStep = no_step,
        writer: DocumentWriter | None = None,
        storage: Storage | None = None,
        activity: Recorder = NO_RECORD,
        **settings: Any,
    ) -> Inbox:
        folders = (InboxFolder(path=self.folder, category=category),)
        storage = storage or LocalAtoZ(self.world.root)
        return Inbox(
            self.world.engine,
            writer or DocumentWriter(self.world.engine, storage, lock_timeout_s=30),
            storage,
            InboxSettings(folders=folders, **settings),
            atoz_root=self.world.root,
            lock_timeout_s=30,
            clock=lambda: self.now,
            on_stored=self.thumbnails.append,
            on_outcome=lambda kind, label: self.outcomes.append((kind, label)),
            on_step=on_step,
            activity=activity,
        )

    def stored_path(self, row: dict[str, Any]) -> Path:
        """The file of a document row in its patient's folder."""
        folder = self.world.image_folder(int(row["PatNum"]))
        return self.world.root / folder[0].upper() / folder / row["FileName"]

    def pages_of(self, pat_num: int, *, after: int = 0) -> list[list[int | None]]:
        """The page tags of each document of ``pat_num`` above DocNum ``after``."""
        return [
            scans.page_numbers(self.stored_path(row))
            for row in self.world.documents(pat_num)
            if row["DocNum"] > after
        ]

    def delete_patient(self, pat_num: int) -> None:
        self.world.delete_patient(pat_num)

    def in_(self, sub: str) -> list[str]:
        where = self.folder / sub
        return sorted(p.name for p in where.iterdir()) if where.is_dir() else []


def make_desk(world: World, folder: Path) -> Desk:
    folder.mkdir(parents=True, exist_ok=True)
    categories = {
        "Documents": world.add_category("Documents", order=0),
        "X-Rays": world.add_category("X-Rays", order=1),
        "Forms": world.add_category("Forms", order=2),
        "Old": world.add_category("Old", order=3, hidden=True),
    }
    patients = [
        world.add_patient("Avery", "Anna"),
        world.add_patient("Brook", "Ben"),
        world.add_patient("Cole", "Clara"),
    ]
    return Desk(world=world, folder=folder, categories=categories, patients=patients)


@pytest.fixture
def desk(world: World, tmp_path: Path) -> Desk:
    """On SQLite, MariaDB, and MariaDB with Open Dental's MyISAM schema."""
    return make_desk(world, tmp_path / "scans")


def orphans(world: World) -> list[Path]:
    """Files in patient folders (``<root>/<Letter>/<Folder>/``) that no document row names."""
    known = {row["FileName"] for row in world.documents()}
    return [
        path
        for path in world.root.glob("?/*/*")
        if path.is_file() and not path.name.startswith(".") and path.name not in known
    ]
