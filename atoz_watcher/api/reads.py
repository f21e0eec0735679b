"""``ReadLane``: the API's reads, a few at a time on threads of their own.

A read is Python holding the interpreter lock for most of its few milliseconds. FastAPI runs a
plain endpoint on anyio's 40 threads: with 20 clients at once, 20 threads took turns on that one
lock, each request waiting on every other's, and the slowest of them waited several times as
long as the typical one (``bench/read_threads.py``: p99 3.3x the p50 on SQLite). A lane lets
``threads`` reads run and queues the rest in the event loop, in the order they came, so a read
waits for the reads before it and not for its share of 20. More than one thread, so that while
a read waits for the database (a round trip on the LAN to MariaDB) another runs.

A read that cannot start within ``wait_s`` (the database hangs and the threads with it) is a
503 with ``Retry-After``, not a request that waits for ever behind the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from atoz_watcher.api.errors import ApiError

T = TypeVar("T")

READS_BUSY = "The server is busy with other reads; try again later"
RETRY_AFTER_S = 1


class ReadLane:
    """Runs a blocking read on one of ``threads`` threads; at most ``wait_s`` seconds queued."""

    def __init__(self, *, threads: int, wait_s: float) -> None:
        if threads < 1:
            raise ValueError("a read lane needs at least one thread")
        self._threads = threads
        self._wait_s = wait_s
        # A limiter belongs to one event loop: each loop that serves this lane gets its own (a
        # server has one; tests may serve one app from several).
        self._limiters: RunVar[anyio.CapacityLimiter] = RunVar(f"atoz-read-lane-{id(self)}")

    def _slots(self) -> anyio.CapacityLimiter:
        try:
            return self._limiters.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self._threads)
            self._limiters.set(limiter)
            return limiter

    def waiting(self) -> int:
        """How many reads wait for a thread now (in the calling event loop)."""
        return self._slots().statistics().tasks_waiting

    async def run(self, read: Callable[[], T]) -> T:
        slots = self._slots()
        started = False
        with anyio.move_on_after(self._wait_s):
            await slots.acquire()
            started = True
        if not started:
            raise ApiError(503, READS_BUSY, {"Retry-After": str(RETRY_AFTER_S)})
        try:
            # A thread of anyio's pool, as for any endpoint; the lane's slot says when.
            return await anyio.to_thread.run_sync(read)
        finally:
            slots.release()
