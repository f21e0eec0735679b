"""`atoz-watcher api` and `atoz-watcher run` with [api] enabled: real processes, real signals."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.api.test_api import AUTH, CUST, DEV, make_clinic
from tests.conftest import World
from tests.support.processes import AtozProcess

STOP_S = 15.0
START_S = 60.0


class Process(AtozProcess):
    """One atoz-watcher process; its log (stderr, JSON lines) goes to a file we poll."""

    def __init__(self, world: World, command: str, env: dict[str, str]) -> None:
        super().__init__(
            command,
            env=world.cli_env() | env,
            log_path=world.state.parent / f"{command}.log",
            stop_s=STOP_S,
            stdin=None,  # inherited, as it always was here
        )

    def port(self) -> int:
        """The port from the ``api.listening`` line, polled for until the deadline."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("event") == "api.listening":
                    return int(str(event["port"]))
            if self.proc.poll() is not None:
                pytest.fail(f"exited ({self.proc.returncode}): {self.log_path.read_text()}")
            time.sleep(0.05)  # polling a log file: there is nothing to wait on
        pytest.fail(f"no api.listening line within {START_S} s")


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


def _exercise(port: int, pat: int) -> tuple[httpx.Response, httpx.Response]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=30) as api:
        uploaded = api.post(
            "/api/v1/documents/Upload",
            json={
                "PatNum": pat,
                "rawBase64": base64.b64encode(b"abc").decode(),
                "extension": "txt",
            },
        )
        listed = api.get("/api/v1/documents", params={"PatNum": pat})
    return uploaded, listed


def test_api_command_serves_until_sigterm(bare_world: World) -> None:
    clinic = make_clinic(bare_world)
    with process(bare_world, "api", API_ENV) as api:
        uploaded, listed = _exercise(api.port(), clinic.pat)
        code = api.terminate()
        text = api.log_path.read_text()

    assert uploaded.status_code == 201, uploaded.text
    assert [d["DocNum"] for d in listed.json()] == [uploaded.json()["DocNum"]]
    assert code == 0
    assert DEV not in text
    assert CUST not in text


def test_run_serves_the_api_when_enabled(bare_world: World) -> None:
    clinic = make_clinic(bare_world)
    env = API_ENV | {"ATOZ_API__ENABLED": "true"}
    with process(bare_world, "run", env) as daemon:
        uploaded, _ = _exercise(daemon.port(), clinic.pat)
        code = daemon.terminate()
        events = [e.get("event") for e in daemon.events()]

    assert uploaded.status_code == 201, uploaded.text
    assert code == 0
    assert "api.stopped" in events
    # The daemon saw the uploaded file appear and left it alone: one row.
    assert len(bare_world.documents(clinic.pat)) == 1


@pytest.mark.parametrize("command", ["api", "run"])
def test_no_api_keys_is_a_config_error_naming_the_key(bare_world: World, command: str) -> None:
    env = bare_world.cli_env() | {"ATOZ_API__ENABLED": "true", "ATOZ_METRICS__PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "atoz_watcher", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 2
    assert "api.keys" in result.stderr


def test_a_port_in_use_is_a_config_error(bare_world: World) -> None:

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = API_ENV | {"ATOZ_API__PORT": str(taken.getsockname()[1])}
        result = subprocess.run(
            [sys.executable, "-m", "atoz_watcher", "api"],
            env=bare_world.cli_env() | env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert result.returncode == 2
    assert "api.host/api.port: cannot listen on 127.0.0.1:" in result.stderr
