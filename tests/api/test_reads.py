"""The read lane: a few reads at a time, the rest queued in order, a 503 past the wait."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.to_thread
import pytest

from atoz_watcher.api.errors import ApiError
from atoz_watcher.api.reads import READS_BUSY, ReadLane

pytestmark = pytest.mark.timeout(30)

DEADLINE_S = 10.0
T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    """``anyio.run``, then each worker thread it started joined: anyio stops its idle ones
    as the loop closes, a moment after ``run`` returns."""
    before = set(threading.enumerate())
    try:
        return anyio.run(main)
    finally:
        for thread in set(threading.enumerate()) - before:
            thread.join(DEADLINE_S)


class Reads:
    """Blocking reads that record which started and how many ran at once; each waits for
    ``release`` before it ends."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[int] = []
        self.peak = 0
        self._running = 0
        self._lock = threading.Lock()
        self._count = threading.Condition(self._lock)

    def read(self, n: int) -> int:
        with self._count:
            self.started.append(n)
            self._running += 1
            self.peak = max(self.peak, self._running)
            self._count.notify_all()
        self.release.wait(DEADLINE_S)
        with self._lock:
            self._running -= 1
        return n * 10

    def wait_started(self, count: int) -> bool:
        with self._count:
            return self._count.wait_for(lambda: len(self.started) >= count, DEADLINE_S)

    def started_now(self) -> list[int]:
        with self._lock:
            return list(self.started)


def test_at_most_threads_reads_run_at_once() -> None:
    lane = ReadLane(threads=2, wait_s=DEADLINE_S)
    reads = Reads()

    async def main() -> list[int]:
        results: list[int] = []

        async def one(n: int) -> None:
            results.append(await lane.run(lambda: reads.read(n)))

        async with anyio.create_task_group() as tasks:
            for n in range(6):
                tasks.start_soon(one, n)
            assert await anyio.to_thread.run_sync(reads.wait_started, 2)
            assert sorted(reads.started_now()) == [0, 1]  # the first two came first; four wait
            reads.release.set()
        return results

    results = run(main)
    assert sorted(results) == [0, 10, 20, 30, 40, 50]
    assert reads.peak == 2
    assert sorted(reads.started) == [0, 1, 2, 3, 4, 5]


def test_queued_reads_start_in_the_order_they_came() -> None:
    lane = ReadLane(threads=1, wait_s=DEADLINE_S)
    reads = Reads()

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lane.run, lambda: reads.read(0))
            assert await anyio.to_thread.run_sync(reads.wait_started, 1)
            for n in range(1, 6):  # queued behind the first, in this order
                tasks.start_soon(lane.run, lambda n=n: reads.read(n))
            with anyio.fail_after(DEADLINE_S):
                while lane.waiting() < 5:  # noqa: ASYNC110 - the lane's own count, polled
                    await anyio.sleep(0.01)
            assert reads.started_now() == [0]  # the other five wait for the one thread
            reads.release.set()

    run(main)
    assert reads.started == [0, 1, 2, 3, 4, 5]
    assert reads.peak == 1


def test_a_read_that_cannot_start_in_time_is_a_503_with_retry_after() -> None:
    lane = ReadLane(threads=1, wait_s=0.2)
    release = threading.Event()
    entered = threading.Event()

    def held() -> str:
        entered.set()
        release.wait(DEADLINE_S)
        return "first"

    ran_second = threading.Event()

    async def main() -> tuple[str, ApiError]:
        first: list[str] = []

        async def hold() -> None:
            first.append(await lane.run(held))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(hold)
            assert await anyio.to_thread.run_sync(entered.wait, DEADLINE_S)
            with pytest.raises(ApiError) as refused:
                await lane.run(ran_second.set)
            release.set()
        return first[0], refused.value

    first, error = run(main)
    assert first == "first"  # the read that had its thread still answers
    assert not ran_second.is_set()  # the refused one never ran
    assert error.status == 503
    assert error.message == READS_BUSY
    assert error.headers == {"Retry-After": "1"}


def test_a_lane_serves_more_than_one_event_loop() -> None:
    lane = ReadLane(threads=1, wait_s=DEADLINE_S)

    async def main() -> int:
        return await lane.run(lambda: 7)

    assert run(main) == 7
    assert run(main) == 7  # a limiter of its own in the second loop


def test_a_lane_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        ReadLane(threads=0, wait_s=1.0)
