"""The daemon's whole-tree rescans: when the next one is due, and why; running one.

Events do get lost (an overflow, a network share, a stopped service), so the tree is rescanned
at start, every ``watcher.rescan_interval`` and whenever a part of the watcher asks. A rescan
the database failed is tried again within seconds: files that arrived while the service was
down wait for it, and the database's return must be noticed quickly.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from typing import Final

import structlog
from sqlalchemy.exc import SQLAlchemyError

from atoz_watcher.app.results import Activity, error_kind
from atoz_watcher.db.activity import Way
from atoz_watcher.errors import DatabaseUnavailableError, NoImageCategoryError
from atoz_watcher.ingest.rescan import Rescanner
from atoz_watcher.system.backoff import next_delay
from atoz_watcher.system.metrics import Metrics
from atoz_watcher.system.status import StatusBoard

log = structlog.get_logger("atoz_watcher.daemon")

# After a failed rescan: 1 s, then 2 s, and 2 s from then on.
RETRY_FIRST_S: Final = 1.0
RETRY_MAX_S: Final = 2.0
# The scheduled reasons; any other (an overflow, an SMB resubscription) is a catch-up.
STARTUP: Final = "startup"
PERIODIC: Final = "periodic"


def arrival_detail(reason: str) -> str:
    """How the activity log names a rescan of ``reason``: startup, safety or catch-up."""
    if reason == STARTUP:
        return "startup"
    if reason == PERIODIC:
        return "safety"
    return "catch-up"


class RescanSchedule:
    """When the next rescan is due, and the reason it will be logged and counted under."""

    def __init__(self, interval_s: float, *, clock: Callable[[], float]) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self.due_at = 0.0  # the catch-up scan at start is due at once
        self.reason = STARTUP
        self._delay = 0.0  # the last retry delay; 0 while rescans succeed
        self._requested = threading.Event()
        # Why a rescan was asked for: kept apart from ``reason``, which the rescan running when
        # the request comes resets as it ends (an overflow during the catch-up scan was counted
        # as "periodic").
        self._requested_reason = PERIODIC

    def request(self, reason: str) -> None:
        """Rescan as soon as the worker is free. Thread-safe: the observer's threads ask."""
        self._requested_reason = reason
        self._requested.set()

    def due(self) -> bool:
        """Is a rescan due now? A request is taken (and its reason kept) by answering it."""
        if self._requested.is_set():
            self._requested.clear()
            self.reason = self._requested_reason
            return True
        return self._clock() >= self.due_at

    def wait_s(self) -> float:
        """Seconds until the next rescan is due (0: now)."""
        return max(0.0, self.due_at - self._clock())

    def failed(self) -> float:
        """The rescan failed: it is tried again after a short delay, returned."""
        self._delay = next_delay(self._delay, first=RETRY_FIRST_S, maximum=RETRY_MAX_S)
        self.due_at = self._clock() + self._delay
        return self._delay

    def finished(self) -> None:
        """The rescan went through: the next is a periodic one, an interval from now."""
        self._delay = 0.0
        self.reason = PERIODIC
        self.due_at = self._clock() + self._interval_s


class Rescans:
    """Runs the rescans ``schedule`` makes due, counting them by reason."""

    def __init__(
        self,
        rescanner: Rescanner,
        schedule: RescanSchedule,
        *,
        metrics: Metrics,
        is_stopping: Callable[[], bool],
        activity: Activity | None = None,
        board: StatusBoard | None = None,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._rescanner = rescanner
        self.schedule = schedule
        self._metrics = metrics
        self._is_stopping = is_stopping
        self._activity = activity
        self._board = board
        self._now = now
        # Whole-tree rescans run so far, by reason (startup, periodic, event-queue-overflow).
        self.counts: Counter[str] = Counter()

    def run(self, *, should_stop: Callable[[], bool]) -> None:
        """One rescan; ``should_stop`` is asked between folders."""
        reason = self.schedule.reason
        self.counts[reason] += 1
        log.info("rescan.started", reason=reason)
        detail = arrival_detail(reason)
        activity = self._activity
        arriving = nullcontext() if activity is None else activity.arriving(Way.RESCAN, detail)
        try:
            with arriving:
                summary = self._rescanner.run(should_stop=should_stop)
        except (DatabaseUnavailableError, SQLAlchemyError, NoImageCategoryError) as exc:
            self._metrics.error(error_kind(exc))
            if activity is not None:
                activity.failed(exc, files=0)
            delay = self.schedule.failed()
            log.warning("rescan.retry", reason=reason, error=str(exc), delay_s=delay)
            return
        self.schedule.finished()
        if self._board is not None:
            field = "last_catch_up" if detail == "catch-up" else "last_safety_rescan"
            self._board.update(**{field: self._now()})
        if not self._is_stopping():
            self._metrics.scan_completed(time.time())
        log.info(
            "rescan.finished",
            reason=reason,
            folders=summary.folders,
            files=summary.files_seen,
            registered=summary.registered,
            unmatched=len(summary.unmatched),
        )
