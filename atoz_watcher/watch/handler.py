"""Events -> queue. Nothing else happens on the observer thread: no stat, no database."""

from __future__ import annotations

import os
import queue
from dataclasses import dataclass
from enum import Enum

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from atoz_watcher.rules.ignore import IgnoreRules
from atoz_watcher.rules.layout import FILE, LETTER, PATIENT

# What the observer asks the kernel for. Without a filter, watchdog also subscribes to opens and
# no-write closes: walking a large tree then floods the inotify queue with directory-open
# events, the queue overflows, and watchdog re-walks the tree forever.
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]


class Kind(Enum):
    TOUCH = "touch"  # a file was created, written or moved in: (re)start its quiet period
    CLOSED = "closed"  # a writer closed the file: the short quiet period applies
    GONE = "gone"  # a file was deleted or moved away
    FOLDER = "folder"  # a letter or patient folder appeared: list what it already holds
    WAKE = "wake"  # nothing happened: the worker should look at its stop flag now


@dataclass(frozen=True, slots=True)
class Event:
    kind: Kind
    path: str


def relative_parts(root: str, path: str) -> list[str] | None:
    """The parts of ``path`` below ``root``; None when it is not below it."""
    if not path.startswith(root + os.sep):
        return None
    return path[len(root) + 1 :].split(os.sep)  # noqa: PTH206 - strings: no Path per event


def classify(root: str, path: str, *, is_directory: bool, ignore: IgnoreRules) -> int | None:
    """The depth of ``path`` when it is something we act on, else None."""
    parts = relative_parts(root, path)
    if parts is None or ignore(parts):
        return None
    depth = len(parts)
    if is_directory:
        return depth if depth in (LETTER, PATIENT) else None
    return depth if depth == FILE else None


class QueueingHandler(FileSystemEventHandler):
    """Turns watchdog events into Events on a queue, filtered by depth and ignore rules."""

    def __init__(self, root: str, out: queue.SimpleQueue[Event], ignore: IgnoreRules) -> None:
        self._root = root.rstrip(os.sep)
        self._out = out
        self._ignore = ignore

    def put(self, kind: Kind, path: bytes | str, *, is_directory: bool) -> None:
        """Queue ``kind`` for ``path`` when it is something we act on (not ignored, at the
        depth of a folder or a file we watch)."""
        text = os.fsdecode(path)
        if classify(self._root, text, is_directory=is_directory, ignore=self._ignore) is not None:
            self._out.put(Event(kind, text))

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory:
            if event.event_type in ("created", "moved"):
                target = event.dest_path if event.event_type == "moved" else event.src_path
                self.put(Kind.FOLDER, target, is_directory=True)
            return
        if event.event_type == "deleted":
            self.put(Kind.GONE, event.src_path, is_directory=False)
        elif event.event_type == "moved":
            # Renamed into place: complete as far as the writer is concerned.
            self.put(Kind.GONE, event.src_path, is_directory=False)
            self.put(Kind.CLOSED, event.dest_path, is_directory=False)
        elif event.event_type == "closed":
            self.put(Kind.CLOSED, event.src_path, is_directory=False)
        else:  # created, modified
            self.put(Kind.TOUCH, event.src_path, is_directory=False)
