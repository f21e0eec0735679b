"""Waiting on a condition with a deadline: the suite's one way to wait (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

DEADLINE_S = 60.0


def wait_for(condition: Callable[[], bool], *, timeout: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.05)
