"""For the crash tests only: a step hook that kills the process with SIGKILL at a named step.

``atoz-watcher run`` reads ``ATOZ_TEST_INBOX_KILL_AT`` (tests/fault/test_inbox_crash.py): "<step>"
or "<step>:<n>" kills the process when the inbox's filer reaches ``step`` (its n-th time,
1-based). Unset, as in every real deployment, there is no hook at all.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger("atoz_watcher.daemon")

KILL_AT_VARIABLE = "ATOZ_TEST_INBOX_KILL_AT"


def kill_at(environ: Mapping[str, str]) -> Callable[[str], None] | None:
    """The filer's step hook ``KILL_AT_VARIABLE`` asks for (None: unset, the normal case)."""
    wanted = environ.get(KILL_AT_VARIABLE, "")
    if not wanted:
        return None
    step, _, nth = wanted.partition(":")
    times = int(nth) if nth.isdigit() else 1
    reached = [0]

    def on_step(name: str) -> None:
        if name != step:
            return
        reached[0] += 1
        if reached[0] == times:
            log.warning("inbox.test_kill", step=name, nth=times)
            os.kill(os.getpid(), signal.SIGKILL)

    return on_step
