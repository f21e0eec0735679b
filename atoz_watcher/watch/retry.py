"""When to try a file again after it failed for a transient reason: exponential backoff.

paperless-ngx keeps a ``queued`` set and never retries a file that failed once; here a failed
file comes back after ``first_s``, then ``factor`` times longer each time, at most ``max_s``,
until it succeeds. Pure apart from the injected clock: no threads, no locks, no sleeps.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from atoz_watcher.system.backoff import next_delay


@dataclass(slots=True)
class _Record:
    attempts: int  # failures since the last success
    delay: float  # the last delay handed out; the next one grows from it
    ticket: int | None  # the live heap item while waiting, None once handed out by due()


class RetryBook:
    """Failed paths, their failure counts and when each may be tried again.

    Delays differ per path, so the waiting paths sit in a heap by due time. An entry made
    stale by a newer fail() or by succeed() stays in the heap and is skipped when it surfaces
    (lazy invalidation), which keeps both O(log n).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        first_s: float = 2.0,
        factor: float = 2.0,
        max_s: float = 600.0,
    ) -> None:
        if first_s <= 0 or factor < 1 or max_s < first_s:
            raise ValueError(
                f"need 0 < first_s <= max_s and factor >= 1, got "
                f"first_s={first_s}, factor={factor}, max_s={max_s}"
            )
        self._clock = clock
        self._first_s = first_s
        self._factor = factor
        self._max_s = max_s
        self._records: dict[str, _Record] = {}
        self._heap: list[tuple[float, int, str]] = []  # (due, ticket, path)
        self._tickets = itertools.count()
        self._waiting = 0

    def fail(self, path: str) -> float:
        """Count one more failure of ``path``; return the delay until it is due again."""
        record = self._records.get(path)
        if record is None:
            record = self._records[path] = _Record(attempts=0, delay=0.0, ticket=None)
        # record.delay is 0 until the first failure: a record is dropped when its path succeeds.
        delay = next_delay(
            record.delay, first=self._first_s, maximum=self._max_s, factor=self._factor
        )
        record.attempts += 1
        record.delay = delay
        if record.ticket is None:
            self._waiting += 1
        record.ticket = next(self._tickets)
        heapq.heappush(self._heap, (self._clock() + delay, record.ticket, path))
        return delay

    def succeed(self, path: str) -> None:
        """``path`` went through: forget its failures."""
        record = self._records.pop(path, None)
        if record is not None and record.ticket is not None:
            self._waiting -= 1

    def due(self) -> list[str]:
        """Paths whose next attempt has come, earliest first; their failure counts stay."""
        now = self._clock()
        ready: list[str] = []
        while self._heap and self._heap[0][0] <= now:
            _, ticket, path = heapq.heappop(self._heap)
            record = self._records.get(path)
            if record is None or record.ticket != ticket:
                continue  # stale: succeeded since, or failed again with a later due time
            record.ticket = None
            self._waiting -= 1
            ready.append(path)
        return ready

    def next_due(self) -> float | None:
        """Seconds until the earliest waiting path is due (0 when overdue); None when none."""
        self._drop_stale()
        if not self._heap:
            return None
        return max(0.0, self._heap[0][0] - self._clock())

    def attempts(self, path: str) -> int:
        """Failures of ``path`` since it last succeeded (0 when unknown)."""
        record = self._records.get(path)
        return 0 if record is None else record.attempts

    def __len__(self) -> int:
        return self._waiting

    def _drop_stale(self) -> None:
        while self._heap:
            _, ticket, path = self._heap[0]
            record = self._records.get(path)
            if record is not None and record.ticket == ticket:
                return
            heapq.heappop(self._heap)
