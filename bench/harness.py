"""The benches' reporting helpers, and their door to what they share with the tests.

Every bench imports this module first (a script's own folder is on sys.path, so it is
``harness``). It puts the repository root on sys.path, so that the benches reach
tests/support/ (the tests never import bench/): the large tree, the daemon as a real process,
the inotify watch limit and the JSON log (tests/support/harness.py, re-exported here), and the
Samba server (tests/support/smbd.py, which bench/shares.py imports).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.harness import (  # noqa: E402 - once the root is on sys.path
    DEV_ONLY,
    SURNAMES,
    WATCH_MARGIN,
    WATCHES,
    BenchFailure,
    DaemonProcess,
    Run,
    Tree,
    WatchLimitError,
    build_tree,
    enough_watches,
    insert_patients,
    log_events,
    poll,
    run_daemon,
)

T = TypeVar("T")

# The shared names, re-exported for the benches (``from harness import Tree``).
__all__ = [
    "DEV_ONLY",
    "SURNAMES",
    "WATCHES",
    "WATCH_MARGIN",
    "BenchFailure",
    "DaemonProcess",
    "Run",
    "Tree",
    "WatchLimitError",
    "build_tree",
    "check",
    "enough_watches",
    "failure",
    "insert_patients",
    "log_events",
    "poll",
    "run_daemon",
    "run_script",
    "step",
    "timed",
    "verdict",
]


# -- reporting ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def failure(message: str) -> BenchFailure:
    return BenchFailure(message)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise failure(message)


def timed(action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


@contextmanager
def step(out: TextIO, what: str) -> Iterator[None]:
    out.write(f"  {what} ...")
    out.flush()
    start = time.perf_counter()
    yield
    out.write(f" {time.perf_counter() - start:.1f} s\n")
    out.flush()


def run_script(main: Callable[[], int], script: str) -> int:
    """A bench's ``main()``; a ``BenchFailure`` ends it as ``SystemExit("<script>: message")``."""
    try:
        return main()
    except BenchFailure as exc:
        raise SystemExit(f"{script}: {exc}") from None
