"""deadline.call_within: an answer in time, whatever the call does."""

from __future__ import annotations

import threading
import time

import pytest

from atoz_watcher.system.deadline import DeadlineExceededError, call_within
from tests.support.waiting import wait_for


def test_the_result_and_the_exception_come_back() -> None:
    assert call_within(lambda: 42, 5, name="t") == 42

    def fails() -> None:
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        call_within(fails, 5, name="t")


def test_a_call_that_overruns_is_abandoned_at_the_deadline() -> None:
    release = threading.Event()
    finished = threading.Event()

    def blocks() -> str:
        release.wait(30)
        finished.set()
        return "late"

    started = time.monotonic()
    with pytest.raises(DeadlineExceededError, match=r"stuck: no answer within 0\.3 s"):
        call_within(blocks, 0.3, name="stuck")
    took = time.monotonic() - started
    assert 0.3 <= took < 2.0
    assert not finished.is_set()  # still running: abandoned, not killed
    release.set()
    assert finished.wait(10)
    wait_for(lambda: not [t for t in threading.enumerate() if t.name == "stuck"], timeout=10)
