"""The suite-wide secrets check (tests/support/leaks.py) can fail: each tap, fed a registered secret
on purpose, reports it. The leaks go to private collectors and registries, never the session's,
so this file passes and the session's own check stays meaningful."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import requests
import structlog
from requests.adapters import BaseAdapter
from structlog.testing import capture_logs

from tests.support.leaks import SECRETS, Collector, Secrets, collecting_into

ROOT = Path(__file__).resolve().parents[2]
# Never registered in the session's registry: this file leaks it on purpose.
LEAKED = "leak-" + "KEY-4e1d8a0b93c7f2"


def registry() -> Secrets:
    secrets = Secrets()
    secrets.add(LEAKED, what="API key")
    return secrets


def test_a_secret_logged_through_capture_logs_is_found() -> None:
    private = Collector()
    with collecting_into(private), capture_logs():
        structlog.get_logger("test").warning("login.failed", password=LEAKED)

    (leak,) = private.leaks(registry())
    assert leak.what == "API key"
    assert "test_secrets.py::" in leak.where
    assert "capture_logs" in leak.where
    assert LEAKED not in leak.excerpt  # the report masks it
    assert "<API key>" in leak.excerpt


def test_an_error_body_with_a_secret_is_found_and_a_success_body_is_not_collected() -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        status = 401 if request.url.path == "/bad" else 200
        return httpx.Response(status, text=f"key was {LEAKED}")

    private = Collector()
    with collecting_into(private), httpx.Client(transport=httpx.MockTransport(reply)) as client:
        assert client.get("http://127.0.0.1/good").status_code == 200
        assert client.get("http://127.0.0.1/bad").status_code == 401

    (leak,) = private.leaks(registry())
    assert "HTTP 401 /bad" in leak.where


@pytest.mark.process
def test_subprocess_output_with_a_secret_is_found() -> None:
    private = Collector()
    with collecting_into(private):
        subprocess.run(
            [sys.executable, "-c", f"import sys; sys.stderr.write('pw={LEAKED}')"],
            capture_output=True,
            check=True,
            timeout=60,
        )

    (leak,) = private.leaks(registry())
    assert "subprocess stderr" in leak.where


def test_a_base64_payload_is_found_by_any_excerpt() -> None:
    payload = base64.b64encode(os.urandom(3000)).decode("ascii")
    secrets = Secrets()
    secrets.add_payload(payload)
    private = Collector()
    private.record("start", f"body={payload[:40]}...")
    private.record("middle", "x " + payload[1501:1548] + " y")  # any 47 characters
    private.record("end", payload[-50:])
    private.record("short excerpt", payload[:31])  # too short to tell from chance: not a leak
    private.record("unrelated", base64.b64encode(os.urandom(3000)).decode("ascii"))

    assert sorted(leak.where for leak in private.leaks(secrets)) == ["end", "middle", "start"]


def test_short_or_non_text_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="8"):
        Secrets().add("pw")
    with pytest.raises(TypeError):
        Secrets().add(b"bytes-secret")


def test_the_session_registry_takes_and_finds_a_secret() -> None:
    # Test modules register what they configure at import (tests/support/api.py: the API keys
    # and its payload; tests/support/sftp_site.py: the SFTP password; tests/app/test_check.py: a
    # database password); fixtures may use the ``secrets`` fixture, which is this registry.
    before = len(SECRETS)
    SECRETS.add("session-KEY-0c9e7b12aa", what="API key")
    assert len(SECRETS) == before + 1
    assert SECRETS.find("key session-KEY-0c9e7b12aa!") == [("API key", "key <API key>!")]


@pytest.mark.process
def test_a_leak_fails_a_whole_run_and_is_named(tmp_path: Path) -> None:
    """End to end: a run whose test prints and logs a registered secret passes its test but
    fails at session end, naming the test and masking the secret."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_leaky.py").write_text(
        textwrap.dedent(
            f"""
            import structlog
            from tests.support.leaks import SECRETS

            def test_leaky():
                SECRETS.add({LEAKED!r}, what="SFTP password")
                print("connecting with", {LEAKED!r})

            def test_quiet():
                structlog.get_logger().info("nothing.here")
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 passed" in run.stdout
    assert "secrets leaked: 1" in run.stdout
    assert "test_leaky.py::test_leaky (Captured stdout call): SFTP password" in run.stdout
    assert LEAKED not in run.stdout + run.stderr


def test_an_error_body_through_requests_is_found() -> None:
    """schemathesis calls the API through requests: its error bodies are collected too."""

    class Canned(BaseAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
            del kwargs
            response = requests.Response()
            response.status_code = 403
            response._content = f"denied {LEAKED}".encode()
            response.request = request
            return response

        def close(self) -> None:
            pass

    private = Collector()
    with collecting_into(private), requests.Session() as session:
        session.mount("http://", Canned())
        assert session.get("http://127.0.0.1/x").status_code == 403

    (leak,) = private.leaks(registry())
    assert "HTTP 403 /x" in leak.where
