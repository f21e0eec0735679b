"""Build the watchdog observer, native (inotify) or polling, in one factory."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from atoz_watcher.errors import AtozError
from atoz_watcher.watch.handler import EVENT_FILTER, QueueingHandler

log = structlog.get_logger("atoz_watcher.watch")

Mode = Literal["auto", "native", "polling"]
RAISE_WATCHES = (
    "sysctl -w fs.inotify.max_user_watches=524288 (and put "
    "fs.inotify.max_user_watches=524288 in /etc/sysctl.d/90-atoz-watcher.conf)"
)


class WatchError(AtozError):
    """Native watching could not start and polling was not allowed."""


class _OverflowListener(logging.Handler):
    """watchdog reports a kernel queue overflow only in a log record; turn it into a call.

    (Events were lost: the daemon answers with a full rescan.)
    """

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(level=logging.WARNING)
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self._on_overflow()


_WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")


@dataclass
class Watching:
    """A started observer, the mode it runs in, and how to stop it."""

    observer: BaseObserver
    mode: Literal["native", "polling"]
    _listener: _OverflowListener | None = None

    def stop(self, timeout_s: float = 5.0) -> None:
        self.observer.stop()
        self.observer.join(timeout_s)
        if self._listener is not None:
            for name in _WATCHDOG_LOGGERS:
                logging.getLogger(name).removeHandler(self._listener)


def _start(observer: BaseObserver, root: Path, handler: QueueingHandler) -> None:
    observer.schedule(handler, str(root), recursive=True, event_filter=EVENT_FILTER)
    observer.start()


def start_watching(
    root: Path,
    handler: QueueingHandler,
    *,
    mode: Mode,
    poll_interval: float,
    on_overflow: Callable[[], None],
) -> Watching:
    """Start watching ``root``; ``auto`` falls back to polling, with a warning, where native
    watching cannot start (most often: the inotify watch limit)."""
    if mode != "polling":
        listener = _OverflowListener(on_overflow)
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).addHandler(listener)
        native = InotifyObserver()
        try:
            _start(native, root, handler)
        except OSError as exc:
            # The observer made its own inotify instance (and reader thread) when built.
            native.stop()
            for name in _WATCHDOG_LOGGERS:
                logging.getLogger(name).removeHandler(listener)
            reason = _why(exc)
            if mode == "native":
                raise WatchError(f"native watching of {root} failed: {reason}") from None
            log.warning("watch.fallback_to_polling", root=str(root), reason=reason)
        else:
            return Watching(native, "native", listener)
    polling = PollingObserver(timeout=poll_interval)
    _start(polling, root, handler)
    return Watching(polling, "polling")


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"the inotify watch limit is reached; raise it with {RAISE_WATCHES}"
    if exc.errno == errno.EMFILE:
        return "the inotify instance limit is reached (fs.inotify.max_user_instances)"
    return exc.strerror or str(exc)
