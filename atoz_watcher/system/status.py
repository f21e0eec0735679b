"""The watcher's status board: what the Health page shows of a running daemon.

The daemon writes to its board as things happen (the watch started, a catch-up or safety
rescan finished, the queues moved); the page reads a ``Status`` snapshot. One board per daemon,
handed to the page by the wiring; nothing global.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Status:
    started: datetime | None = None  # when the daemon started watching
    watch_mode: str = ""  # "native", "polling" or "smb", as running (after any fallback)
    watched_folders: int = 0  # folders under watch (inotify watches in native mode)
    pending_files: int = 0  # files seen and waiting to be registered
    retrying_files: int = 0  # files whose registration failed and will be tried again
    thumbnail_queue: int = 0  # thumbnails waiting to be rendered
    last_catch_up: datetime | None = None  # the last rescan after an overflow or reconnect
    last_safety_rescan: datetime | None = None  # the last periodic (or startup) full rescan


class StatusBoard:
    """A ``Status`` that several threads update and the page reads whole."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = Status()

    def update(self, **changes: Any) -> None:  # noqa: ANN401 - Status's own fields, checked by replace
        with self._lock:
            self._status = replace(self._status, **changes)

    def snapshot(self) -> Status:
        with self._lock:
            return self._status
