"""Nothing the suite configures as a secret may reach a log line or an error body.

Tests register the passwords, keys and base64 payloads they configure (``SECRETS.add``, or the
``secrets`` fixture). While the session runs, ``SecretsWatch`` collects what the suite
produced: every captured stdout/stderr/log section of every test phase (structlog's rendered
lines, Python logging, the output of in-process daemons and of subprocesses that inherit the
test's stderr), every event held by structlog's ``capture_logs``, the stdout/stderr of every
``subprocess.run``, the body of every httpx or requests response with status >= 400, failure
reports, and at the end every ``*.log`` file under the session's temporary root (the stderr of
daemon processes). At session end no registered secret may appear in any of it; a leak fails
the run and names where it was found (the secret masked). tests/conftest.py registers the
plugin; tests/system/test_secrets.py tests it.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MIN_SECRET_CHARS = 8  # shorter values would match by chance ("root", "pw")
PAYLOAD_SLICE_CHARS = 32  # a base64 payload leaks when a 32-character slice of it shows...
PAYLOAD_STRIDE = 16  # ...taken every 16 characters: any excerpt of 47+ characters is caught
_BASE64_RUN = re.compile(rf"[A-Za-z0-9+/=_-]{{{PAYLOAD_SLICE_CHARS},}}")


class Secrets:
    """The registry: values that must never be logged or echoed."""

    def __init__(self) -> None:
        self._whole: dict[str, str] = {}  # secret -> what it is (for the report)
        self._slices: dict[str, str] = {}  # 32-character slice of a payload -> what it is

    def add(self, *values: Any, what: str = "secret") -> None:
        """Passwords, keys, URLs with a password (str, or pydantic's SecretStr): the whole value
        is looked for."""
        for given in values:
            value = given.get_secret_value() if hasattr(given, "get_secret_value") else given
            if not isinstance(value, str):
                raise TypeError(f"a registered secret is a str, not {type(value).__name__}")
            if len(value) < MIN_SECRET_CHARS:
                raise ValueError(f"a registered secret needs {MIN_SECRET_CHARS}+ characters")
            self._whole[value] = what

    def add_payload(self, encoded: str, what: str = "base64 payload") -> None:
        """A base64 payload: any excerpt of it of 47 characters or more counts (a truncated log
        field, an error quoting part of a body)."""
        if len(encoded) < PAYLOAD_SLICE_CHARS:
            self.add(encoded, what=what)
            return
        last = len(encoded) - PAYLOAD_SLICE_CHARS
        for start in [*range(0, last, PAYLOAD_STRIDE), last]:
            self._slices[encoded[start : start + PAYLOAD_SLICE_CHARS]] = what

    def __len__(self) -> int:
        return len(self._whole) + len(self._slices)

    def find(self, content: str) -> list[tuple[str, str]]:
        """(what, masked excerpt) of each secret kind found in ``content``."""
        found = []
        for secret, what in self._whole.items():
            at = content.find(secret)
            if at >= 0:
                found.append((what, self._mask(content[max(0, at - 40) : at + len(secret) + 40])))
        if self._slices:
            for run in _BASE64_RUN.finditer(content):
                text = run.group()
                hits = (
                    text[i : i + PAYLOAD_SLICE_CHARS]
                    for i in range(len(text) - PAYLOAD_SLICE_CHARS + 1)
                )
                what = next((self._slices[h] for h in hits if h in self._slices), None)
                if what is not None:
                    before = content[max(0, run.start() - 40) : run.start()]
                    after = content[run.end() : run.end() + 40]
                    found.append((what, self._mask(f"{before}<{what}>{after}")))
                    break
        return found

    def _mask(self, excerpt: str) -> str:
        for secret, what in self._whole.items():  # the report must not leak either
            excerpt = excerpt.replace(secret, f"<{what}>")
        return _BASE64_RUN.sub("<base64>", excerpt) if self._slices else excerpt


@dataclass(frozen=True)
class Leak:
    where: str  # e.g. "tests/api/test_api.py::test_x (Captured stderr call)"
    what: str  # the kind of secret, never the secret itself
    excerpt: str  # the secret masked, with a little context


class Collector:
    """Texts the suite produced, each with where it came from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.texts: list[tuple[str, str]] = []

    def record(self, where: str, content: str | bytes | None) -> None:
        if not content:
            return
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        with self._lock:
            self.texts.append((where, content))

    def leaks(self, secrets: Secrets) -> list[Leak]:
        with self._lock:
            texts = list(self.texts)
        return [
            Leak(where, what, excerpt)
            for where, content in texts
            for what, excerpt in secrets.find(content)
        ]


SECRETS = Secrets()
COLLECTOR = Collector()
_collectors = [COLLECTOR]  # the last one receives; tests of the checker push a private one
_current_test = ["(outside tests)"]


def _record(where: str, content: str | bytes | None) -> None:
    _collectors[-1].record(f"{_current_test[0]} ({where})", content)


@contextmanager
def collecting_into(collector: Collector) -> Iterator[Collector]:
    """Send what the taps collect to ``collector`` instead of the session's (the checker's own
    test uses it, so that the secret it leaks on purpose does not fail the session)."""
    _collectors.append(collector)
    try:
        yield collector
    finally:
        _collectors.remove(collector)


class SecretsWatch:
    """The pytest plugin that installs the taps and checks at session end."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []
        self._run = subprocess.run  # the original, untapped

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        del session
        import httpx  # noqa: PLC0415 - a dev dependency, imported only when the suite runs
        import structlog.testing  # noqa: PLC0415

        capture_call = structlog.testing.LogCapture.__call__

        def capturing(self: Any, logger: Any, method_name: str, event_dict: Any) -> Any:
            _record("structlog capture_logs", repr(event_dict))
            return capture_call(self, logger, method_name, event_dict)

        send = httpx.Client.send

        def sending(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            response = send(self, request, *args, **kwargs)
            if response.status_code >= 400:
                try:
                    body = response.content
                except httpx.ResponseNotRead:  # streamed: the test reads it, if at all
                    body = b""
                _record(f"HTTP {response.status_code} {request.url.path}", body)
            return response

        import requests  # noqa: PLC0415 - schemathesis calls the API through requests

        send_requests = requests.Session.send

        def sending_requests(self: Any, request: Any, **kwargs: Any) -> Any:
            response = send_requests(self, request, **kwargs)
            if response.status_code >= 400 and not kwargs.get("stream"):
                _record(f"HTTP {response.status_code} {request.path_url}", response.content)
            return response

        run = subprocess.run

        def running(*args: Any, **kwargs: Any) -> Any:
            try:
                result = run(*args, **kwargs)
            except subprocess.CalledProcessError as exc:
                _record("subprocess stdout", exc.stdout)
                _record("subprocess stderr", exc.stderr)
                raise
            _record("subprocess stdout", result.stdout)
            _record("subprocess stderr", result.stderr)
            return result

        self._patch(structlog.testing.LogCapture, "__call__", capturing)
        self._patch(httpx.Client, "send", sending)
        self._patch(requests.Session, "send", sending_requests)
        self._patch(subprocess, "run", running)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        _current_test[0] = nodeid

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for title, content in report.sections:
            if not title.endswith(f" {report.when}"):
                continue  # an earlier phase's section, already collected with that phase
            COLLECTOR.record(f"{report.nodeid} ({title})", content)
        if report.failed and report.longrepr is not None:
            # A failure's message may quote an error body or a log line too.
            COLLECTOR.record(f"{report.nodeid} ({report.when} failure)", str(report.longrepr))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        _current_test[0] = "(session end)"
        base = session.config.option.basetemp
        if base and Path(base).is_dir():
            # find, not Path.rglob: some tests build folders deeper than the recursion limit.
            found = self._run(
                ["find", base, "-type", "f", "-name", "*.log", "-print0"],
                capture_output=True,
                check=False,
            )
            for name in sorted(filter(None, found.stdout.split(b"\0"))):
                log = Path(os.fsdecode(name))
                COLLECTOR.record(f"file {log.relative_to(base)}", log.read_bytes())
        leaks = COLLECTOR.leaks(SECRETS)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if leaks:
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            if reporter is not None:
                reporter.write_sep("=", f"secrets leaked: {len(leaks)}", red=True)
                for leak in leaks[:50]:
                    reporter.write_line(f"{leak.where}: {leak.what}: ...{leak.excerpt}...")
        elif reporter is not None:
            reporter.write_sep(
                "-",
                f"secrets check: {len(SECRETS)} needles, "
                f"{len(COLLECTOR.texts)} texts collected, no leak",
            )

    def pytest_unconfigure(self) -> None:
        while self._undo:
            owner, name, original = self._undo.pop()
            setattr(owner, name, original)
