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


def test_at_most_threads_reads_run_at_once() -> None:
    lane = ReadLane(threads=2, wait_s=DEADLINE_S)
    release = threading.Event()
    running: list[int] = []
    peak: list[int] = []
    started: list[int] = []
    two_started = threading.Event()
    lock = threading.Lock()

    def read(n: int) -> int:
        with lock:
            started.append(n)
            running.append(n)
            peak.append(len(running))
            if len(started) == 2:
                two_started.set()
        release.wait(DEADLINE_S)
        with lock:
            running.remove(n)
        return n * 10

    async def main() -> list[int]:
        results: list[int] = []

        async def one(n: int) -> None:
            results.append(await lane.run(lambda: read(n)))

        async with anyio.create_task_group() as tasks:
            for n in range(6):
                tasks.start_soon(one, n)
            assert await anyio.to_thread.run_sync(two_started.wait, DEADLINE_S)
            with lock:
                assert sorted(started) == [0, 1]  # the first two came first; four wait
            release.set()
        return results

    results = run(main)
    assert sorted(results) == [0, 10, 20, 30, 40, 50]
    assert max(peak) == 2
    assert sorted(started) == [0, 1, 2, 3, 4, 5]


def test_queued_reads_start_in_the_order_they_came() -> None:
    lane = ReadLane(threads=1, wait_s=DEADLINE_S)
    release = threading.Event()
    entered = threading.Event()
    started: list[int] = []
    running: list[int] = []
    peak: list[int] = []
    lock = threading.Lock()

    def read(n: int) -> None:
        with lock:
            started.append(n)
            running.append(n)
            peak.append(len(running))
        entered.set()
        release.wait(DEADLINE_S)
        with lock:
            running.remove(n)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lane.run, lambda: read(0))
            assert await anyio.to_thread.run_sync(entered.wait, DEADLINE_S)
            for n in range(1, 6):  # queued behind the first, in this order
                tasks.start_soon(lane.run, lambda n=n: read(n))
            with anyio.fail_after(DEADLINE_S):
                while lane.waiting() < 5:  # noqa: ASYNC110 - the lane's own count, polled
                    await anyio.sleep(0.01)
            with lock:
                assert started == [0]  # the other five wait for the one thread
            release.set()

    run(main)
    assert started == [0, 1, 2, 3, 4, 5]
    assert max(peak) == 1


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
