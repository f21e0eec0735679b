"""An `atoz-watcher` command run as a real process by the tests, its output in a log file.

``AtozProcess`` is the bare process; ``Process`` (the API's, which knows its port from the log)
and ``DaemonLife`` (`run` with its notify socket, for the crash and outage tests) add what each
kind of test waits on.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

import pytest

from tests.support.api import CUST, DEV
from tests.support.harness import log_events
from tests.support.worlds import World

COMMAND_TIMEOUT_S = 120  # a command that runs to its end (`run`)
API_START_S = 60.0
API_STOP_S = 15.0
LIFE_STOP_S = 10.0  # `run` stops within this after SIGTERM (DaemonLife)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m atoz_watcher <args>`` to the end, its output captured (as text)."""
    return subprocess.run(
        [sys.executable, "-m", "atoz_watcher", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


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


class Process(AtozProcess):
    """One atoz-watcher process; its log (stderr, JSON lines) goes to a file we poll."""

    def __init__(self, world: World, command: str, env: dict[str, str]) -> None:
        super().__init__(
            command,
            env=world.cli_env() | env,
            log_path=world.state.parent / f"{command}.log",
            stop_s=API_STOP_S,
            stdin=None,  # inherited, as it always was here
        )

    def port(self) -> int:
        """The port from the ``api.listening`` line, polled for until the deadline."""
        deadline = time.monotonic() + API_START_S
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("event") == "api.listening":
                    return int(str(event["port"]))
            if self.proc.poll() is not None:
                pytest.fail(f"exited ({self.proc.returncode}): {self.log_path.read_text()}")
            time.sleep(0.05)  # polling a log file: there is nothing to wait on
        pytest.fail(f"no api.listening line within {API_START_S} s")


@contextmanager
def process(world: World, command: str, env: dict[str, str]) -> Iterator[Process]:
    proc = Process(world, command, env)
    try:
        yield proc
    finally:
        proc.close()


API_ENV = {
    "ATOZ_API__PORT": "0",
    "ATOZ_API__KEYS": json.dumps([{"developer_key": DEV, "customer_key": CUST}]),
    "ATOZ_METRICS__PORT": "0",
    "ATOZ_THUMBNAILS__BACKFILL_DAYS": "0",
}


class DaemonLife(AtozProcess):
    """One `python -m atoz_watcher run` process, its notify socket and its log."""

    def __init__(self, world: World, log: Path, **env: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"atoz-fault-{uuid.uuid4().hex}"
        self.sock.bind("\0" + name)  # abstract namespace: no file, no path-length limit
        self.messages: list[str] = []
        environment = {
            k: v for k, v in world.cli_env().items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))
        }
        environment.update(
            NOTIFY_SOCKET="@" + name,
            ATOZ_WATCHER__SETTLE_SECONDS="0.2",
            ATOZ_WATCHER__OPEN_SETTLE_SECONDS="1.0",
            ATOZ_METRICS__ENABLED="false",
            ATOZ_THUMBNAILS__ENABLED="false",
            ATOZ_MATERIALIZER__INTERVAL="0",
        )
        environment.update(env)
        super().__init__("run", env=environment, log_path=log, stop_s=LIFE_STOP_S)

    def _pump(self, wait: float) -> None:
        self.sock.settimeout(max(wait, 0.001))
        with contextlib.suppress(TimeoutError):
            self.messages.extend(self.sock.recv(4096).decode().split("\n"))

    def ready(self) -> bool:
        """Whether READY=1 came (non-blocking)."""
        if "READY=1" not in self.messages:
            self.sock.setblocking(False)
            try:
                while True:
                    self.messages.extend(self.sock.recv(4096).decode().split("\n"))
            except BlockingIOError:
                pass
        return "READY=1" in self.messages

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "READY=1" not in self.messages:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no READY=1 from the daemon (got {self.messages})\n{self.tail()}")
            if self.proc.poll() is not None:
                pytest.fail(f"the daemon exited ({self.proc.returncode})\n{self.tail()}")
            self._pump(min(left, 0.2))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        super().close()
        self.sock.close()

    def tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])
