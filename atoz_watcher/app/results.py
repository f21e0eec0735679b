"""What the daemon does with each registration result, one handler per concern.

A result comes from an event batch or from a rescan (the rescanner reports each as it goes).
``Results`` hands a Registered or a Skipped to every handler in turn; a Plan (a dry run's)
changes nothing. Each handler keeps its own state: the retry books, the latency clock, the
names our own renames will echo back, the thumbnail queue.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import structlog

from atoz_watcher.db.activity import Arrival, Problem, Recorder, Way
from atoz_watcher.errors import NoImageCategoryError
from atoz_watcher.ingest.registrar import Gone, Plan, Registered, Skipped
from atoz_watcher.ingest.rescan import TOO_RECENT
from atoz_watcher.rules.naming import Skip
from atoz_watcher.rules.wording import plural

if TYPE_CHECKING:
    from atoz_watcher.imaging.jobs import OnStored
    from atoz_watcher.system.metrics import Metrics
    from atoz_watcher.watch.retry import RetryBook
    from atoz_watcher.watch.stability import StabilityTracker

log = structlog.get_logger("atoz_watcher.daemon")

# Skip reasons that may clear up by themselves: try the file again later.
TRANSIENT: Final = frozenset({Gone.UNREADABLE, Gone.RENAME_FAILED})
MAX_RENAMED: Final = 100_000


def error_kind(exc: Exception) -> str:
    """The ``atoz_errors`` kind of a failed registration or rescan."""
    return "no-image-category" if isinstance(exc, NoImageCategoryError) else "database"


def path_of(result: Registered | Skipped) -> str:
    candidate = result.plan.candidate if isinstance(result, Registered) else result.candidate
    return str(candidate.path)


class Handler:
    """One concern's part in a result; does nothing unless it overrides."""

    def registered(self, result: Registered) -> None:
        del result

    def skipped(self, result: Skipped) -> None:
        del result


class Results:
    """Hands each result to the handlers, in order."""

    def __init__(self, *handlers: Handler) -> None:
        self._handlers = handlers

    def __call__(self, result: Plan | Registered | Skipped) -> None:
        if isinstance(result, Registered):
            for handler in self._handlers:
                handler.registered(result)
        elif isinstance(result, Skipped):
            for handler in self._handlers:
                handler.skipped(result)


class Retries(Handler):
    """The retry books: a file that went through (or was turned away for good) leaves them;
    one refused for a reason that may pass is tried again later; one a rescan found still
    being written goes back to the stability check."""

    def __init__(self, retries: RetryBook, outage: RetryBook, tracker: StabilityTracker) -> None:
        self._retries = retries
        self._outage = outage
        self._tracker = tracker

    def registered(self, result: Registered) -> None:
        path = path_of(result)
        self._outage.succeed(path)
        self._retries.succeed(path)

    def skipped(self, result: Skipped) -> None:
        path = path_of(result)
        self._outage.succeed(path)
        if result.reason == TOO_RECENT:
            # Found by a rescan while perhaps still being written: registered once it settles.
            self._tracker.touch(path, closed=False)
        elif result.reason in TRANSIENT:
            delay = self._retries.fail(path)
            log.info("registration.retry", path=path, reason=result.reason, delay_s=delay)
        else:
            self._retries.succeed(path)


class Latency:
    """When each file was first seen, for the registration latency metric."""

    def __init__(self, metrics: Metrics, *, clock: Callable[[], float]) -> None:
        self._metrics = metrics
        self._clock = clock
        self._first_seen: dict[str, float] = {}

    def seen(self, path: str) -> None:
        self._first_seen.setdefault(path, self._clock())

    def forget(self, path: str) -> None:
        self._first_seen.pop(path, None)

    def registered(self, path: str) -> None:
        first = self._first_seen.pop(path, None)
        if first is not None:
            self._metrics.observe_latency(self._clock() - first)


class Counts(Handler):
    """The metrics: files registered (and how long they took), files skipped by reason."""

    def __init__(self, metrics: Metrics, latency: Latency) -> None:
        self._metrics = metrics
        self._latency = latency

    def registered(self, result: Registered) -> None:
        self._metrics.registered()
        self._latency.registered(path_of(result))

    def skipped(self, result: Skipped) -> None:
        path = path_of(result)
        if result.reason == TOO_RECENT:
            self._latency.seen(path)  # not a skip: the file comes back once it settles
            return
        if result.reason not in TRANSIENT:
            self._latency.forget(path)
        if result.reason != Gone.KNOWN:
            self._metrics.skipped(result.reason)


class Echoes(Handler):
    """Final names of files we renamed (stripping a ``_<DefNum>_`` prefix), until their
    "moved" event comes back: that event is our own, not a new file."""

    def __init__(self) -> None:
        self._renamed: set[str] = set()

    def registered(self, result: Registered) -> None:
        if result.plan.renames:
            if len(self._renamed) > MAX_RENAMED:
                self._renamed.clear()  # events that never came (e.g. a polling miss)
            self._renamed.add(str(result.plan.final_path))

    def ours(self, path: str) -> bool:
        """Is ``path`` the echo of one of our renames? Answers yes once per rename."""
        if path in self._renamed:
            self._renamed.discard(path)
            return True
        return False


class Thumbnails(Handler):
    """A registered image's thumbnail, handed to the thumbnail queue."""

    def __init__(self, on_stored: OnStored) -> None:
        self._on_stored = on_stored

    def registered(self, result: Registered) -> None:
        # Pillow comes with the thumbnails: `atoz-watcher rescan` uses these handlers too, and
        # its start is timed (bench/rescan.py).
        from atoz_watcher.imaging.jobs import job_for  # noqa: PLC0415

        job = job_for(
            result.plan.final_path,
            stamp=datetime.now(),
            pat_num=result.plan.candidate.pat_num,
            doc_num=result.doc_num,
        )
        if job is not None:  # None: no image
            self._on_stored(job)


# Skips no operator needs to hear of: the file was registered already, went away, is a file
# Open Dental never imports (hidden, Thumbs.db), or is still being written.
QUIET: Final = frozenset({Gone.KNOWN, Gone.VANISHED, Skip.HIDDEN, Skip.THUMBS_DB, TOO_RECENT})
# What a problem's kind means, in an operator's words (the Health page shows them).
SKIP_WORDS: Final[dict[str, str]] = {
    Gone.NOT_REGULAR: "not a regular file (a link, a device or a pipe): left alone",
    Gone.UNREADABLE: "the file cannot be read yet: tried again later",
    Gone.RENAME_FAILED: "the file could not be renamed: tried again later",
    Gone.LINK: "the patient folder is a link: refused",
    Skip.UNDECODABLE: "the name is not valid UTF-8: Open Dental's database cannot hold it",
    Skip.TOO_LONG: "the name is too long for Open Dental (255 characters)",
    Skip.EMPTY_AFTER_PREFIX: "nothing is left of the name after its _<category>_ prefix",
    Skip.HIDDEN_AFTER_PREFIX: "the name is hidden once its _<category>_ prefix is cut off",
}
ERROR_WORDS: Final = {
    "database": "the database did not answer or refused the rows: the files wait and are tried "
    "again",
    "no-image-category": "the database has no image category: nothing can be registered until "
    "Open Dental has one",
}
# Problems already recorded (path and kind) are not recorded again while the process runs (a
# file retried every few seconds, a rescan every hour); the memory is bounded.
MAX_REMEMBERED: Final = 10_000
FLUSH_EVERY: Final = 500  # arrivals are written in batches, not one transaction a file


class Activity(Handler):
    """The activity log: how each registered document came, and what an operator should see.

    Arrivals are buffered and written by ``flush`` (the daemon flushes after each batch and
    rescan); the way they came is the one ``arriving`` set (the watcher's events by default).
    A problem is recorded once per file and kind, and a database outage once until it ends.
    """

    def __init__(self, recorder: Recorder, root: Path) -> None:
        self._recorder = recorder
        self._root = str(root)
        self._way = Way.FOLDER
        self._detail = ""
        self._arrivals: list[Arrival] = []
        self._told: set[tuple[str, str]] = set()
        self._in_outage = False

    @contextmanager
    def arriving(self, way: Way, detail: str = "") -> Iterator[None]:
        """The results within come ``way`` (a rescan: its detail); flushed at the end."""
        previous = self._way, self._detail
        self._way, self._detail = way, detail
        try:
            yield
        finally:
            self.flush()
            self._way, self._detail = previous

    def registered(self, result: Registered) -> None:
        self._in_outage = False
        if result.doc_num is None:
            return
        self._arrivals.append(Arrival(result.doc_num, self._way, self._detail))
        if len(self._arrivals) >= FLUSH_EVERY:
            self.flush()

    def skipped(self, result: Skipped) -> None:
        self._in_outage = False
        if result.reason in QUIET:
            return
        words = SKIP_WORDS.get(result.reason, result.reason)
        if result.detail:
            words = f"{words} ({result.detail})"
        self.told(result.reason, words, path_of(result))

    def told(self, kind: str, reason: str, path: str) -> None:
        """Record a problem with the file at ``path`` (absolute), once per file and kind."""
        key = (path, kind)
        if key in self._told:
            return
        if len(self._told) >= MAX_REMEMBERED:
            self._told.clear()
        self._told.add(key)
        self._recorder.problem(Problem(kind, reason, self._place(path)))

    def failed(self, exc: Exception, *, files: int) -> None:
        """Registration (or a rescan) failed on the database: recorded once per outage."""
        if self._in_outage:
            return
        self._in_outage = True
        kind = error_kind(exc)
        words = ERROR_WORDS[kind]
        if files:
            words = f"{words} ({plural(files, 'file')} waiting)"
        self._recorder.problem(Problem(kind, words))

    def flush(self) -> None:
        if self._arrivals:
            arrivals, self._arrivals = self._arrivals, []
            self._recorder.arrived(arrivals)

    def _place(self, path: str) -> str:
        """``path`` relative to the A-to-Z root (as an operator looks for it there)."""
        if path.startswith(self._root + os.sep):
            return path[len(self._root) + 1 :]
        return path
