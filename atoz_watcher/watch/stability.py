"""Is a file completely written? A quiet period with no events, then an unchanged stat.

The rule is paperless-ngx's: no event for a quiet period AND ``(st_size, st_mtime_ns)`` the
same as at the previous look. Two quiet periods: a short one (``settle_s``) once the writer has
closed the file (or renamed it into place), a long one (``open_settle_s``) while no close was
seen, because a scanner may hold the file open and pause between chunks, and because close
events cannot be trusted to arrive (in a folder created moments ago many files never get one;
polling never sees one). A writer that pauses longer than ``open_settle_s`` with the file open
is seen as finished: ``open_settle_s`` must exceed the longest such pause expected.

Pure apart from the injected ``clock`` and ``stat``: no threads, no locks, no sleeps. One
worker thread owns a tracker and uses ``next_due()`` as its ``queue.get`` timeout.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

StatFn = Callable[[str], os.stat_result]  # raises OSError like os.stat
Signature = tuple[int, int]  # (st_size, st_mtime_ns)


def _signature(result: os.stat_result) -> Signature:
    return (result.st_size, result.st_mtime_ns)


@dataclass(slots=True)
class _Entry:
    order: int  # when the path was first touched, for the order of ready()
    due: float  # clock time at which the quiet period ends
    signature: Signature | None  # None: could not be statted at the last look
    closed: bool  # the last event was a close: the short quiet period applies


class StabilityTracker:
    """Paths heard about, each waiting for its quiet period and a stat that holds still.

    Within one of the two queues every quiet period has the same length, so entries kept in
    the order of their last touch or look are also in the order of their due times: touch() is
    O(1) and ready() stops at the first entry not yet due in each queue, never statting it.
    This needs a clock that does not go back (``time.monotonic``).
    """

    def __init__(
        self,
        *,
        settle_s: float,
        clock: Callable[[], float],
        stat: StatFn = os.stat,
        open_settle_s: float | None = None,
    ) -> None:
        open_s = settle_s if open_settle_s is None else open_settle_s
        if settle_s < 0 or open_s < 0:
            raise ValueError(f"quiet periods must not be negative, got {settle_s}, {open_s}")
        self._settle = {True: settle_s, False: open_s}
        self._clock = clock
        self._stat = stat
        self._queues: dict[bool, OrderedDict[str, _Entry]] = {
            True: OrderedDict(),
            False: OrderedDict(),
        }
        self._touches = 0

    def touch(self, path: str, *, closed: bool = False) -> None:
        """An event for ``path``: restart its quiet period from the stat it has now; the short
        one when the event was the writer closing the file."""
        signature = self._try_signature(path)
        entry = self._queues[True].pop(path, None) or self._queues[False].pop(path, None)
        due = self._clock() + self._settle[closed]
        if entry is None:
            entry = _Entry(order=self._touches, due=due, signature=signature, closed=closed)
            self._touches += 1
        else:
            entry.due, entry.signature, entry.closed = due, signature, closed
        self._queues[closed][path] = entry

    def forget(self, path: str) -> None:
        """``path`` was deleted or moved away: stop tracking it."""
        for entries in self._queues.values():
            entries.pop(path, None)

    def ready(self) -> list[str]:
        """Remove and return the paths that are quiet and unchanged, in first-touch order.

        A due path whose stat changed is still being written: it keeps the new stat and
        starts a fresh quiet period. One that vanished is dropped. One that cannot be statted
        for another reason is returned, so the registrar reports it and retries.
        """
        now = self._clock()
        # Take the due entries off first: one re-queued below must not be looked at twice.
        due: list[tuple[str, _Entry]] = []
        for entries in self._queues.values():
            while entries:
                path, entry = next(iter(entries.items()))
                if entry.due > now:
                    break
                entries.popitem(last=False)
                due.append((path, entry))

        done: list[tuple[int, str]] = []
        for path, entry in due:
            try:
                signature = _signature(self._stat(path))
            except FileNotFoundError:
                continue
            except OSError:
                done.append((entry.order, path))
                continue
            if signature == entry.signature:
                done.append((entry.order, path))
            else:
                entry.signature = signature
                entry.due = now + self._settle[entry.closed]
                self._queues[entry.closed][path] = entry
        done.sort()
        return [path for _, path in done]

    def next_due(self) -> float | None:
        """Seconds until the earliest path may be ready (0 when overdue); None when idle."""
        firsts = [next(iter(entries.values())).due for entries in self._queues.values() if entries]
        if not firsts:
            return None
        return max(0.0, min(firsts) - self._clock())

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._queues.values())

    def __contains__(self, path: object) -> bool:
        return any(path in entries for entries in self._queues.values())

    def _try_signature(self, path: str) -> Signature | None:
        try:
            return _signature(self._stat(path))
        except OSError:
            # Still tracked: ready() looks again once the quiet period is over.
            return None
