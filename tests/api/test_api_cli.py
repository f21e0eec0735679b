"""`atoz-watcher api` and `atoz-watcher run` with [api] enabled: real processes, real signals."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys

import httpx
import pytest

from tests.support.api import AUTH, CUST, DEV
from tests.support.clinics import make_clinic
from tests.support.processes import API_ENV, process
from tests.support.worlds import World

pytestmark = pytest.mark.process  # each test runs atoz-watcher as a process


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
