"""Failed logins counted per name and per client address, in a sliding window.

After ``attempts`` failures within ``window_s`` for a name, or from an address, a login for it
is refused (429) until the oldest of those failures leaves the window. A success clears the
name's count (not the address's: one right password must not unlock guessing at others).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

# Keys kept before every window is swept of what has left it (names and addresses that
# stopped failing); bounds the memory a flood of made-up names can take.
_SWEEP_AT = 10_000


class LoginLimiter:
    """``retry_after(name, address)``, ``failed(name, address)``, ``succeeded(name)``."""

    def __init__(
        self, *, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._attempts = attempts
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, name: str, address: str) -> int | None:
        """Whole seconds until a login for ``name`` from ``address`` may be tried again, or
        None when it may be now."""
        now = self._clock()
        waits = []
        with self._lock:
            for key in _keys(name, address):
                times = self._recent(key, now)
                if len(times) >= self._attempts:
                    waits.append(times[len(times) - self._attempts] + self._window_s - now)
        if not waits:
            return None
        return max(1, math.ceil(max(waits)))

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= _SWEEP_AT:
                for key in list(self._failures):
                    self._recent(key, now)
            for key in _keys(name, address):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(_name_key(name), None)

    def _recent(self, key: str, now: float) -> deque[float]:
        """The failures of ``key`` still in the window (older ones dropped, and an empty
        entry forgotten)."""
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self._window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times


def _name_key(name: str) -> str:
    return "name:" + name.strip().casefold()


def _keys(name: str, address: str) -> tuple[str, str]:
    return _name_key(name), "address:" + address
