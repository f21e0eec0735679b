"""An `atoz-watcher` command run as a real process by the tests, its output in a log file.

Shared by tests/api/test_api_cli.py, tests/fault/test_crash.py and tests/fault/test_load.py, which
add what each needs (a notify socket, waiting for a log line) on top.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Literal

from bench.harness import log_events


class AtozProcess:
    """``python -m atoz_watcher <command>``; stdout and stderr both go to ``log_path``."""

    def __init__(
        self,
        command: str,
        *,
        env: Mapping[str, str],
        log_path: Path,
        stop_s: float,
        log_mode: Literal["ab", "wb"] = "ab",
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
    ) -> None:
        self.log_path = log_path
        self.stop_s = stop_s
        self._log = log_path.open(log_mode)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atoz_watcher", command],
            env=dict(env),
            stdin=stdin,
            stdout=self._log,
            stderr=self._log,
        )

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log events written so far (those called ``name``, if given)."""
        return log_events(self.log_path, name)

    def terminate(self) -> int:
        """SIGTERM, then its exit code; ``subprocess.TimeoutExpired`` after ``stop_s``."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(self.stop_s)

    def close(self) -> None:
        """SIGKILL it if it still runs, and close the log (always: call it in a finally)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
