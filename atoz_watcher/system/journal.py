"""The intent journal: what a batch is about to rename, written durably before the renames.

A crash between renaming ``_12_x.jpg`` to ``x.jpg`` and inserting its row would otherwise lose the
category (the prefix is gone) and let the next scan file it under the default one. Each batch's
intents go to one file in the journal folder; the file is removed after the rows are committed.
At start, every file left behind is replayed (see ``Registrar.recover``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from atoz_watcher.system.fsops import fsync_dir, write_durably


@dataclass(frozen=True, slots=True)
class Intent:
    """One planned rename and the row it leads to."""

    pat_num: int
    folder: str  # the patient folder, absolute
    src: str  # name before (with prefix)
    dst: str  # name after
    category: int
    img_type: int
    inode: int  # the file's inode when planned: proves dst is our file on replay


@dataclass(frozen=True, slots=True)
class JournalEntry:
    path: Path
    intents: tuple[Intent, ...]


class Journal:
    """A folder of batch files; each file is a JSON list of intents."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(
        self, intents: Sequence[Intent], *, replacing: JournalEntry | None = None
    ) -> JournalEntry:
        """Record ``intents`` durably, in a new entry or in place of ``replacing``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = replacing.path if replacing else self.directory / f"{uuid.uuid4().hex}.json"
        payload = json.dumps([asdict(intent) for intent in intents], ensure_ascii=False)
        # Names that are not valid UTF-8 never reach the journal (naming.skip_reason).
        write_durably(path, payload.encode("utf-8"))
        return JournalEntry(path=path, intents=tuple(intents))

    def remove(self, entry: JournalEntry) -> None:
        entry.path.unlink(missing_ok=True)
        fsync_dir(self.directory)

    def pending(self) -> Iterator[JournalEntry]:
        """Entries left by a batch that did not finish, oldest first."""
        if not self.directory.is_dir():
            return
        files = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for path in files:
            raw = json.loads(path.read_text(encoding="utf-8"))
            yield JournalEntry(path=path, intents=tuple(Intent(**item) for item in raw))
