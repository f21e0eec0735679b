"""Log lines as an admin reads them: one JSON object per line, warnings included."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.process  # a fresh interpreter

SCRIPT = """
import warnings
from atoz_watcher.system.logging import configure_logging
configure_logging(level="info")
import structlog
structlog.get_logger("test").info("document.registered", path="/x/a.jpg", patnum=1)
warnings.warn("EXIF block damaged", UserWarning, stacklevel=1)
"""


def test_every_line_is_one_json_event_warnings_too() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )

    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(e["event"], e["level"]) for e in events] == [
        ("document.registered", "info"),
        ("python.warning", "warning"),
    ]
    assert events[1]["category"] == "UserWarning"
    assert events[1]["message"] == "EXIF block damaged"
