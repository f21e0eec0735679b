"""A memory budget shared by the threads that decode images: a semaphore counted in bytes.

A job reserves what decoding its image will take (estimated from the header, before a pixel
is decoded) and waits while the other threads hold too much; a job larger than the whole
budget is refused at once. However many threads render, together they stay within the budget.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

MB = 1024 * 1024


class OverBudgetError(Exception):
    """One job needs more than the whole budget."""

    def __init__(self, needed: int, budget: int) -> None:
        self.needed = needed
        self.budget = budget
        super().__init__(
            f"needs about {needed / MB:,.0f} MB to decode, more than the whole thumbnail "
            f"memory budget of {budget / MB:,.0f} MB ([thumbnails] memory_budget_mb)"
        )


class MemoryBudget:
    def __init__(self, total_bytes: int) -> None:
        if total_bytes < 1:
            raise ValueError("a memory budget must be at least one byte")
        self.total = total_bytes
        self._used = 0
        self._peak = 0
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        with self._changed:
            return self._used

    @property
    def peak(self) -> int:
        """The most ever reserved at once (what the budget let through)."""
        with self._changed:
            return self._peak

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` of the budget while the block runs; OverBudgetError when it can
        never fit."""
        nbytes = max(0, nbytes)
        if nbytes > self.total:
            raise OverBudgetError(nbytes, self.total)
        with self._changed:
            while self._used + nbytes > self.total:
                self._changed.wait()
            self._used += nbytes
            self._peak = max(self._peak, self._used)
        try:
            yield
        finally:
            with self._changed:
                self._used -= nbytes
                self._changed.notify_all()
