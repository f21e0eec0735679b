"""``atoz-watcher run``: observer -> queue -> stability -> registrar, with catch-up scans.

Threads: watchdog's observer (only enqueues), one worker (owns the stability tracker, the
retries and the rescans, and calls the registrar), the thumbnail threads (fed by the worker
through their own queue, so rendering never holds up registration), and the caller's thread,
which waits for the stop signal and pings systemd's watchdog while the worker is alive.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import SQLAlchemyError

from atoz_watcher.app.rescans import Rescans, RescanSchedule
from atoz_watcher.app.results import (
    Activity,
    Counts,
    Echoes,
    Latency,
    Results,
    Retries,
    Thumbnails,
    error_kind,
)
from atoz_watcher.app.wiring import Components
from atoz_watcher.db.activity import KEEP_DAYS
from atoz_watcher.documents.materializer_worker import MaterializerWorker
from atoz_watcher.errors import AtozError, DatabaseUnavailableError, NoImageCategoryError
from atoz_watcher.ingest.registrar import Candidate
from atoz_watcher.ingest.rescan import Rescanner
from atoz_watcher.ingest.resolver import FolderResolver
from atoz_watcher.ingest.scan import list_files
from atoz_watcher.rules.layout import FILE, PATIENT
from atoz_watcher.rules.matching import FolderMatch, Unmatched
from atoz_watcher.system.sdnotify import Notifier
from atoz_watcher.watch.handler import Event, Kind, QueueingHandler, relative_parts
from atoz_watcher.watch.inotify import TreeEmitter, TreeObserver
from atoz_watcher.watch.observer import Watching, start_watching
from atoz_watcher.watch.polling import TreePoller
from atoz_watcher.watch.retry import RetryBook
from atoz_watcher.watch.stability import StabilityTracker

# The inbox's parts (pdfium, zxing-cpp) are imported only when an inbox is configured.
if TYPE_CHECKING:
    from atoz_watcher.app.inboxes import InboxWatching, InboxWork

log = structlog.get_logger("atoz_watcher.daemon")

MAX_BATCH = 500
MAX_WAIT_S = 1.0  # the worker wakes at least this often (heartbeat, rescans, retries)
STOP_JOIN_S = 8.0  # SIGTERM must end the process within systemd's 10 s
PRUNE_EVERY_S = 24 * 3600.0  # the activity log keeps KEEP_DAYS (30) days: pruned at start, daily
# A patient folder that matches no patient, in an operator's words (the Health page).
FOLDER_WORDS = {
    Unmatched.NO_PATIENT: "the folder matches no patient: its files are not registered",
    Unmatched.AMBIGUOUS: "the folder could be several patients': its files are not registered",
    Unmatched.WRONG_LETTER: "the folder is under the wrong letter: its files are not registered",
}


class Daemon:
    """Runs observer, stability check, registrar and rescans; ``run`` blocks until stopped.

    Its parts come from ``components``; the results of registration go to the handlers of
    ``app.results``, and the rescans are scheduled by ``app.rescans``.
    """

    def __init__(
        self,
        components: Components,
        *,
        notifier: Notifier,
        clock: Callable[[], float] = time.monotonic,
        watchdog_interval_s: float | None = None,
    ) -> None:
        settings = components.settings
        self._settings = settings
        self._root = settings.atoz_path
        self._notifier = notifier
        self._metrics = components.metrics
        self._thumbnails = components.thumbnail_queue
        # Where every stored file's thumbnail goes: registration, the materialiser, and the API
        # served by the same process all feed the one queue.
        self.on_stored = components.on_stored
        self.materializer = MaterializerWorker(
            components.materializer, interval=settings.materializer.interval
        )
        self._clock = clock
        self._watchdog_interval_s = watchdog_interval_s
        self._stop = threading.Event()
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._registrar = components.registrar
        self._resolver = FolderResolver(components.engine, clock=clock)
        self._tracker = StabilityTracker(
            settle_s=settings.watcher.settle_seconds,
            open_settle_s=settings.watcher.open_settle_seconds,
            clock=clock,
        )
        self._retries = RetryBook(clock=clock)
        # Files held back by a database outage: tried again soon (every few seconds), since
        # the database coming back should be noticed within seconds: everything is registered
        # within 5 s of its return (tests/fault/test_database_faults.py measures it), so the
        # longest wait must leave room for the batch itself.
        self._outage = RetryBook(clock=clock, first_s=1.0, max_s=2.0)
        self._latency = Latency(self._metrics, clock=clock)
        self._echoes = Echoes()
        # What the Health page shows of this daemon (the wiring hands the board to the page),
        # and the activity log the Today and Health pages read (pruned daily: see _prune).
        self.board = components.status_board
        self._activity_log = components.activity
        self._activity = Activity(self._activity_log, self._root)
        self._prune_at = 0.0
        handlers = [
            Retries(self._retries, self._outage, self._tracker),
            self._echoes,
            Counts(self._metrics, self._latency),
            self._activity,
        ]
        if self._thumbnails is not None:
            handlers.append(Thumbnails(self.on_stored))
        self._reported = Results(*handlers)
        # The tree's watcher and rescans leave the inbox folders inside the root alone.
        self._ignore = components.ignore
        self._inbox = self._inbox_work(components)
        self._inbox_watching: InboxWatching | None = None
        rescanner = Rescanner(
            components.engine,
            self._registrar,
            self._root,
            batch_size=settings.scan.batch_size,
            report=self._reported,
            ignore=self._ignore,
            # A file written to a moment ago goes to the stability check, not the registrar.
            min_age_s=settings.watcher.open_settle_seconds,
        )
        self._rescans = Rescans(
            rescanner,
            RescanSchedule(settings.watcher.rescan_interval, clock=clock),
            metrics=self._metrics,
            is_stopping=self._stop.is_set,
            activity=self._activity,
            board=self.board,
        )
        # Whole-tree rescans run so far, by reason (startup, periodic, event-queue-overflow).
        self.rescans = self._rescans.counts
        self._heartbeat = clock()
        # The worker may wait this long for the registration lock before it beats again.
        self._stall_s = settings.scan.lock_timeout + 30.0
        self._worker_died = False
        self.mode: str = ""
        self._watching: Watching | None = None

    def _inbox_work(self, components: Components) -> InboxWork | None:
        inbox = components.inbox
        if inbox is None:
            return None
        from atoz_watcher.app.inboxes import InboxWork  # noqa: PLC0415 - see TYPE_CHECKING

        return InboxWork(
            inbox,
            tracker=self._tracker,
            outage=self._outage,
            metrics=self._metrics,
            settle_s=self._settings.watcher.settle_seconds,
            activity=components.activity,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def handle_exit(self) -> None:
        """Ask the daemon to stop: the worker finishes the batch in hand. Signal-safe
        (SimpleQueue.put is reentrant); the wake-up spares the worker its idle wait."""
        self._stop.set()
        self._events.put(Event(Kind.WAKE, ""))

    def retrying(self, path: str) -> int:
        """How many times ``path`` failed for a reason that may pass (0: not waiting)."""
        return self._retries.attempts(path)

    def request_rescan(self, reason: str) -> None:
        """Rescan the whole tree as soon as the worker is free (e.g. events were lost)."""
        self._rescans.schedule.request(reason)

    def run(self) -> None:
        watching = self._startup()
        if self._thumbnails is not None:
            self._thumbnails.start()
        self.materializer.start()
        worker = threading.Thread(target=self._work, name="atoz-worker", daemon=True)
        worker.start()
        self._notifier.ready()
        self._notifier.status(f"watching {self._root} ({self.mode})")
        log.info("daemon.started", root=str(self._root), mode=self.mode)
        try:
            self._main_loop(worker)
        finally:
            self._shutdown(watching, worker)
        if self._worker_died:
            raise AtozError("the worker thread died; see the log (worker.failed)")

    def _startup(self) -> Watching:
        if self._inbox is not None:
            # Before the tree is watched or rescanned: a part file a killed process left in a
            # patient folder is the inbox's to finish, not the registrar's to register.
            self._inbox.recover()
        handler = QueueingHandler(str(self._root), self._events, self._ignore)
        watching = start_watching(
            self._root,
            handler,
            settings=self._settings.watcher,
            ignore=self._ignore,
            on_overflow=lambda: self.request_rescan("event-queue-overflow"),
            on_resubscribed=lambda: self.request_rescan("smb-resubscribed"),
        )
        self.mode = watching.mode
        self._watching = watching
        self.board.update(
            started=datetime.now(),
            watch_mode=watching.mode,
            watched_folders=_watched_folders(watching) or 0,
        )
        if self._inbox is not None:
            from atoz_watcher.app.inboxes import watch_inboxes  # noqa: PLC0415

            self._inbox_watching = watch_inboxes(
                self._inbox.inbox,
                self._events,
                mode=self.mode,
                poll_interval_s=self._settings.watcher.poll_interval,
            )
        return watching

    def _main_loop(self, worker: threading.Thread) -> None:
        tick = self._watchdog_interval_s or MAX_WAIT_S
        while not self._stop.wait(tick):
            # A worker that ended because a stop came after the wait timed out did not die.
            if not worker.is_alive() and not self._stop.is_set():
                log.error("daemon.worker_died")
                self._worker_died = True
                self._stop.set()
                break
            # Ping systemd only while the worker is making progress: a hung worker must get
            # the service restarted, not kept alive by a healthy main thread.
            if self._watchdog_interval_s and self._clock() - self._heartbeat < self._stall_s:
                self._notifier.watchdog()

    def _shutdown(self, watching: Watching, worker: threading.Thread) -> None:
        self._stop.set()
        self._notifier.stopping()
        watching.stop()
        if self._inbox_watching is not None:
            self._inbox_watching.stop()
        worker.join(STOP_JOIN_S)
        # The materialiser first: it hands jobs to the thumbnail queue until it stops.
        self.materializer.close()
        if self._thumbnails is not None:
            self._thumbnails.close()
        log.info("daemon.stopped", clean=not worker.is_alive())

    # -- the worker ---------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                self._work_once()
            except Exception:  # the service must outlive one bad pass
                self._metrics.error("internal")
                log.exception("worker.failed")
                self._stop.wait(MAX_WAIT_S)

    def _work_once(self) -> None:
        self._heartbeat = self._clock()
        self._take_events(self._wait_s())
        self._metrics.set_queue_depth(len(self._tracker) + len(self._retries) + len(self._outage))
        self._show_status()
        self._prune()
        inbox = self._inbox
        if inbox is not None and not inbox.recovered:
            # A recovery the database failed: nothing of the tree is registered until it ran.
            inbox.due()
            return
        if self._rescans.schedule.due():
            with self._registering():
                if inbox is not None:
                    inbox.request_catch_up()
                    inbox.due()
                self._rescans.run(should_stop=self._beat)
            return
        if inbox is not None:
            with self._registering():
                inbox.due()
        ready = self._tracker.ready() + self._retries.due() + self._outage.due()
        if not ready:
            return
        if inbox is not None:
            ready = self._file_inbox(inbox, ready)
        with self._registering():
            for start in range(0, len(ready), MAX_BATCH):
                if self._stop.is_set():
                    return
                self._register(ready[start : start + MAX_BATCH])

    def _show_status(self) -> None:
        """The board's counts, as of this pass of the worker."""
        changes: dict[str, int] = {
            "pending_files": len(self._tracker),
            "retrying_files": len(self._retries) + len(self._outage),
        }
        if self._thumbnails is not None:
            changes["thumbnail_queue"] = self._thumbnails.depth
        if self._watching is not None and (folders := _watched_folders(self._watching)) is not None:
            changes["watched_folders"] = folders
        self.board.update(**changes)

    def _prune(self) -> None:
        """Once a day (and at start): the activity log keeps the last KEEP_DAYS (30) days."""
        if self._clock() < self._prune_at:
            return
        self._prune_at = self._clock() + PRUNE_EVERY_S
        try:
            gone = self._activity_log.prune(datetime.now() - timedelta(days=KEEP_DAYS))
        except (sqlite3.Error, OSError) as exc:
            log.warning("activity.prune_failed", error=str(exc))
            return
        if gone:
            log.info("activity.pruned", rows=gone)

    def _file_inbox(self, inbox: InboxWork, ready: list[str]) -> list[str]:
        """File the settled inbox files of ``ready``, one at a time; the others, returned."""
        tree: list[str] = []
        with self._registering():
            for path in ready:
                if not inbox.owns(path):
                    tree.append(path)
                elif not self._stop.is_set():
                    self._beat()
                    inbox.process(path)
        return tree

    @contextmanager
    def _registering(self) -> Iterator[None]:
        """Thumbnails wait while files are registered: rows first."""
        if self._thumbnails is None:
            yield
            return
        self._thumbnails.hold()
        try:
            yield
        finally:
            self._thumbnails.release()

    def _wait_s(self) -> float:
        waits = [MAX_WAIT_S, self._rescans.schedule.wait_s()]
        if self._inbox is not None and (inbox_wait := self._inbox.wait_s()) is not None:
            waits.append(inbox_wait)
        books = (self._tracker.next_due(), self._retries.next_due(), self._outage.next_due())
        waits.extend(w for w in books if w is not None)
        return max(0.0, min(waits))

    def _take_events(self, timeout: float) -> None:
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return
        self._apply(event)
        # Take the whole burst now, so one pass of the registrar gets it in batches.
        for _ in range(100_000):
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            self._apply(event)

    def _apply(self, event: Event) -> None:
        if event.kind is Kind.WAKE:
            return
        if event.kind in (Kind.CLOSED, Kind.TOUCH) and self._echoes.ours(event.path):
            # Our own prefix-stripping rename coming back as an event (or found by the poller
            # as a new name): already registered.
            return
        if self._inbox is not None and self._inbox.owns(event.path):
            # An inbox file: the stability check only (it is filed, not registered).
            if event.kind is Kind.GONE:
                self._tracker.forget(event.path)
                self._outage.succeed(event.path)
            else:
                self._tracker.touch(event.path, closed=event.kind is Kind.CLOSED)
            return
        if event.kind in (Kind.TOUCH, Kind.CLOSED):
            self._latency.seen(event.path)
            self._tracker.touch(event.path, closed=event.kind is Kind.CLOSED)
        elif event.kind is Kind.GONE:
            self._tracker.forget(event.path)
            self._retries.succeed(event.path)
            self._outage.succeed(event.path)
            self._latency.forget(event.path)
        else:
            self._folder_appeared(event.path)

    def _folder_appeared(self, path: str) -> None:
        """A new letter or patient folder: what it already holds may have arrived before its
        watch did, so every file in it is treated as just written."""
        parts = relative_parts(str(self._root), path)
        if parts is None:
            return
        folders = [path]
        if len(parts) < PATIENT:
            try:
                with os.scandir(path) as entries:
                    folders = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
            except OSError:
                return
        for folder in folders:
            try:
                names = list_files(folder).files
            except OSError:
                continue
            for name in names:
                self._apply(Event(Kind.TOUCH, os.path.join(folder, name)))  # noqa: PTH118

    # -- registration -------------------------------------------------------------------------

    def _candidates(self, paths: Iterable[str]) -> list[Candidate]:
        root = str(self._root)
        candidates: list[Candidate] = []
        for path in paths:
            parts = relative_parts(root, path)
            if parts is None or len(parts) != FILE or self._ignore(parts):
                continue
            letter, folder, name = parts
            match = self._resolver.resolve(letter, folder)
            if not isinstance(match, FolderMatch):
                self._latency.forget(path)
                log.warning("folder.unmatched", path=path, reason=match.value)
                self._metrics.skipped(match.value)
                self._activity.told(match.value, FOLDER_WORDS[match], path)
                continue
            candidates.append(Candidate(match.patient.pat_num, Path(root, letter, folder), name))
        return candidates

    def _register(self, paths: list[str]) -> None:
        try:
            candidates = self._candidates(paths)
            results = self._registrar.register(candidates)
        except (DatabaseUnavailableError, SQLAlchemyError, NoImageCategoryError) as exc:
            # Nothing is dropped: the files wait and are tried again every few seconds.
            self._metrics.error(error_kind(exc))
            self._activity.failed(exc, files=len(paths))
            delay = 0.0
            for path in paths:
                delay = self._outage.fail(path)
            log.warning("registration.retry", files=len(paths), error=str(exc), delay_s=delay)
            return
        for result in results:
            self._reported(result)
        self._activity.flush()

    def _beat(self) -> bool:
        """Asked between folders by a long rescan: keeps the heartbeat fresh; True to stop."""
        self._heartbeat = self._clock()
        return self._stop.is_set()


def _watched_folders(watching: Watching) -> int | None:
    """Folders under watch: inotify's watches (native), the poller's patient folders (polling);
    0 for SMB, whose one subscription covers the share. None: not countable this moment."""
    observer = watching.observer
    if isinstance(observer, TreeObserver):
        return sum(e.watched for e in list(observer.emitters) if isinstance(e, TreeEmitter))
    if isinstance(observer, TreePoller):
        try:
            return observer.folders
        except RuntimeError:  # the poller's thread changed its records while they were counted
            return None
    return 0
