"""Build the watchdog observer, native (our lean inotify emitter) or polling, in one factory."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from atoz_watcher.errors import AtozError
from atoz_watcher.ignore import IgnoreRules
from atoz_watcher.watch.handler import EVENT_FILTER, PATIENT, QueueingHandler
from atoz_watcher.watch.inotify import TreeObserver

log = structlog.get_logger("atoz_watcher.watch")

Mode = Literal["auto", "native", "polling"]
RAISE_WATCHES = (
    "sysctl -w fs.inotify.max_user_watches=524288 (and put "
    "fs.inotify.max_user_watches=524288 in /etc/sysctl.d/90-atoz-watcher.conf)"
)


class WatchError(AtozError):
    """Native watching could not start and polling was not allowed."""


@dataclass
class Watching:
    """A started observer, the mode it runs in, and how to stop it."""

    observer: BaseObserver
    mode: Literal["native", "polling"]

    def stop(self, timeout_s: float = 5.0) -> None:
        self.observer.stop()
        self.observer.join(timeout_s)


def _start(observer: BaseObserver, root: Path, handler: QueueingHandler) -> None:
    observer.schedule(handler, str(root), recursive=True, event_filter=EVENT_FILTER)
    observer.start()


def start_watching(
    root: Path,
    handler: QueueingHandler,
    *,
    mode: Mode,
    poll_interval: float,
    ignore: IgnoreRules,
    on_overflow: Callable[[], None],
) -> Watching:
    """Start watching ``root``; ``auto`` falls back to polling, with a warning, where native
    watching cannot start (most often: the inotify watch limit).

    Natively, only the root, the letter folders and the patient folders are watched (files
    matter nowhere else), ignored folders not at all; a queue overflow calls ``on_overflow``.
    """
    if mode != "polling":
        native = TreeObserver(max_depth=PATIENT, skip_dir=ignore, on_overflow=on_overflow)
        try:
            _start(native, root, handler)
        except OSError as exc:
            native.stop()
            reason = _why(exc)
            if mode == "native":
                raise WatchError(f"native watching of {root} failed: {reason}") from None
            log.warning("watch.fallback_to_polling", root=str(root), reason=reason)
        else:
            return Watching(native, "native")
    polling = PollingObserver(timeout=poll_interval)
    _start(polling, root, handler)
    return Watching(polling, "polling")


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"the inotify watch limit is reached; raise it with {RAISE_WATCHES}"
    if exc.errno == errno.EMFILE:
        return "the inotify instance limit is reached (fs.inotify.max_user_instances)"
    return exc.strerror or str(exc)
