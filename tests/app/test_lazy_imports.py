"""asyncssh (and cryptography under it) load on the first SFTP transfer only: building the API,
validating an SFTP request and the CLI's commands never import them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.process  # a fresh interpreter

PROBE = """
import sys
from pathlib import Path
from atoz_watcher.app import cli
from atoz_watcher.api.app import create_app
from atoz_watcher.app.wiring import build_api
from atoz_watcher.api.models import UploadSftpRequest
from atoz_watcher.config.settings import Settings
from atoz_watcher.db.engine import make_engine

settings = Settings(atoz_path={root!r}, database_url={url!r})
build_api(settings, make_engine({url!r}))
UploadSftpRequest.model_validate(
    {{"PatNum": 1, "SftpAddress": "site.example/x.png", "SftpUsername": "u", "SftpPassword": "p"}}
)
print(sorted(m for m in sys.modules if m.split(".")[0] in {{"asyncssh", "cryptography"}}))
"""


def test_the_api_and_the_cli_load_no_ssh_stack(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    code = PROBE.format(root=str(tmp_path), url=url)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
