"""The daemon's side of the scanner inboxes: watching them, and filing their settled files.

The inbox folders are watched apart from the tree (they may lie outside it, and inside it they
are no letter folder): native inotify, or, when the daemon polls or hears the server's SMB
notifications, watchdog's polling of the inbox folders (they hold a few files). Their events
go to the daemon's queue and through the same stability check as the tree's files; the worker
then files each settled file (``InboxWork.process``, one at a time). A database outage leaves
the file where it is (the inbox or ``_Work/``) and it is tried again with the outage backoff.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy.exc import SQLAlchemyError
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from atoz_watcher.db.activity import NO_RECORD, Problem, Recorder
from atoz_watcher.errors import DatabaseUnavailableError, NoImageCategoryError
from atoz_watcher.inbox import Inbox, InboxError, Outcome, Skipped
from atoz_watcher.system.backoff import next_delay
from atoz_watcher.system.metrics import Metrics
from atoz_watcher.watch.handler import EVENT_FILTER, Event, Kind
from atoz_watcher.watch.observer import Observer
from atoz_watcher.watch.retry import RetryBook
from atoz_watcher.watch.stability import StabilityTracker

log = structlog.get_logger("atoz_watcher.daemon")

SWEEP_EVERY_S = 24 * 3600.0  # _Done/ is swept of old originals at start and once a day
RETRY_FIRST_S = 1.0  # a recovery or catch-up the database failed: again after 1 s, 2 s, 2 s...
RETRY_MAX_S = 2.0
OUTAGES = (DatabaseUnavailableError, SQLAlchemyError, NoImageCategoryError)


class InboxEvents(FileSystemEventHandler):
    """Turns the events of an inbox folder into the daemon's Events: only the files ``inbox``
    would take (none in its ``_`` folders, no hidden names). No stat, no database here."""

    def __init__(self, inbox: Inbox, out: queue.SimpleQueue[Event]) -> None:
        self._inbox = inbox
        self._out = out

    def _put(self, kind: Kind, path: bytes | str) -> None:
        text = os.fsdecode(path)
        if not os.path.basename(text).startswith(".") and self._inbox.owns(Path(text)):  # noqa: PTH119
            self._out.put(Event(kind, text))

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        if event.event_type == "deleted":
            self._put(Kind.GONE, event.src_path)
        elif event.event_type == "moved":
            self._put(Kind.GONE, event.src_path)
            self._put(Kind.CLOSED, event.dest_path)
        elif event.event_type == "closed":
            self._put(Kind.CLOSED, event.src_path)
        else:  # created, modified
            self._put(Kind.TOUCH, event.src_path)


class InboxWatching:
    """The observers of the inbox folders; ``stop`` stops and joins them."""

    def __init__(self, observers: list[Observer]) -> None:
        self._observers = observers

    def stop(self, timeout_s: float = 5.0) -> None:
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout_s)


def watch_inboxes(
    inbox: Inbox, out: queue.SimpleQueue[Event], *, mode: str, poll_interval_s: float
) -> InboxWatching:
    """Watch every inbox folder: inotify when the tree is watched natively, else polling. An
    inbox that cannot be watched is logged (its files are found by the catch-up scans)."""
    handler = InboxEvents(inbox, out)
    observers: list[Observer] = []
    for path in inbox.paths:
        observer: InotifyObserver | PollingObserver = (
            InotifyObserver() if mode == "native" else PollingObserver(timeout=poll_interval_s)
        )
        try:
            observer.schedule(handler, str(path), recursive=True, event_filter=EVENT_FILTER)
            observer.start()
        except OSError as exc:
            observer.stop()
            log.warning("inbox.unwatched", inbox=str(path), reason=exc.strerror or str(exc))
            continue
        observers.append(observer)
    return InboxWatching(observers)


class InboxWork:
    """What the worker does for the inboxes: recover, catch up, file settled files, sweep.

    ``recovered`` stays False while a recovery the database failed waits to be tried again:
    the daemon registers nothing of the tree meanwhile, since a part file a killed process
    wrote into a patient folder must be finished by the inbox, not registered a second time.
    """

    def __init__(
        self,
        inbox: Inbox,
        *,
        tracker: StabilityTracker,
        outage: RetryBook,
        metrics: Metrics,
        settle_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        now: Callable[[], datetime] = lambda: datetime.now().replace(microsecond=0),
        activity: Recorder = NO_RECORD,
    ) -> None:
        self.inbox = inbox
        self._activity = activity
        self._tracker = tracker
        self._outage = outage
        self._metrics = metrics
        self._settle_s = settle_s
        self._clock = clock
        self._wall = wall
        self._now = now
        self.recovered = False
        self._recover_at = 0.0
        self._catch_up_at: float | None = None  # None: no catch-up waiting
        self._delay = 0.0
        self._sweep_at = 0.0

    # -- recovery, catch-up, sweep ---------------------------------------------------------------

    def recover(self) -> bool:
        """Finish what a killed process left in the inboxes' ``_Work/``; False on an outage
        (tried again by ``due``)."""
        try:
            outcomes = self.inbox.recover()
        except OUTAGES as exc:
            self._failed("inbox.recover_retry", exc)
            self._recover_at = self._clock() + self._delay
            return False
        self._delay = 0.0
        self.recovered = True
        if outcomes:
            log.info("inbox.recovered", files=len(outcomes))
        return True

    def request_catch_up(self) -> None:
        """Process every settled file waiting in the inboxes at the next ``due``."""
        self._catch_up_at = self._clock()

    def due(self) -> None:
        """Run what is due: a recovery or catch-up to try again, the daily sweep."""
        now = self._clock()
        if not self.recovered:
            if now >= self._recover_at:
                self.recover()
            return
        if self._catch_up_at is not None and now >= self._catch_up_at:
            self._catch_up()
        if now >= self._sweep_at:
            self._sweep_at = now + SWEEP_EVERY_S
            try:
                self.inbox.sweep(self._now())
            except OSError as exc:
                log.warning("inbox.sweep_failed", reason=exc.strerror or str(exc))

    def wait_s(self) -> float | None:
        """Seconds until ``due`` has something to do; None when nothing waits."""
        at = [self._sweep_at]
        if not self.recovered:
            at.append(self._recover_at)
        elif self._catch_up_at is not None:
            at.append(self._catch_up_at)
        return max(0.0, min(at) - self._clock())

    def _catch_up(self) -> None:
        try:
            outcomes = self.inbox.catch_up(ready=self._settled)
        except OUTAGES as exc:
            self._failed("inbox.catch_up_retry", exc)
            self._catch_up_at = self._clock() + self._delay
            return
        self._delay = 0.0
        self._catch_up_at = None
        for outcome in outcomes:
            _log(outcome)

    def _settled(self, path: Path) -> bool:
        """Whether a file found by a catch-up is settled (untouched for the settle time);
        one that is not goes to the stability check, and is filed once it settles."""
        try:
            age = self._wall() - path.stat().st_mtime
        except OSError:
            return False
        if age >= self._settle_s:
            return True
        self._tracker.touch(str(path))
        return False

    def _failed(self, event: str, exc: Exception) -> None:
        self._metrics.error("database")
        self._delay = next_delay(self._delay, first=RETRY_FIRST_S, maximum=RETRY_MAX_S)
        log.warning(event, error=str(exc), delay_s=self._delay)

    # -- settled files -------------------------------------------------------------------------

    def owns(self, path: str) -> bool:
        return self.inbox.owns(Path(path))

    def process(self, path: str) -> None:
        """File the settled inbox file ``path``; on an outage it waits for the next try."""
        try:
            outcome = self.inbox.process(Path(path))
        except OUTAGES as exc:
            # The file waits in the inbox (tried again with the outage backoff) or in _Work/,
            # which the recovery the daemon now waits for finishes.
            self._failed("inbox.retry", exc)
            self._outage.fail(path)
            self.recovered = False
            self._recover_at = self._clock() + self._delay
            return
        except (InboxError, OSError) as exc:
            # Left where it is; the next catch-up scan tries it again.
            self._outage.succeed(path)
            self._metrics.error("inbox")
            log.warning("inbox.failed", path=path, error=str(exc))
            reason = f"could not be filed, left where it is: {exc}"
            self._activity.problem(Problem("inbox", reason, path))
            return
        self._outage.succeed(path)
        _log(outcome)


def _log(outcome: Outcome) -> None:
    """The filer logs what it filed, moved or refused; the daemon adds what it skipped."""
    if isinstance(outcome, Skipped):
        log.debug("inbox.skipped", source=outcome.source, why=outcome.why)
