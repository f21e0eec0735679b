"""asyncssh (and cryptography under it) load on the first SFTP transfer only: building the API,
validating an SFTP request and the CLI's commands never import them."""

from __future__ import annotations

import os
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


RESCAN_PROBE = """
import sys
from atoz_watcher.app import cli
code = cli.main(["rescan"])
heavy = {"fastapi", "starlette", "uvicorn", "jinja2", "PIL", "zxingcpp", "pydicom", "httpx"}
print(code, sorted({m.split(".")[0] for m in sys.modules} & heavy))
"""


def test_rescan_loads_only_what_it_uses(tmp_path: Path) -> None:
    """`atoz-watcher rescan` on an empty tree imports no command but its own: not the API's web
    stack, not the imaging libraries (a fresh process's start counts in bench/rescan.py)."""
    root = tmp_path / "OpenDentImages"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOZ_")}
    env.update(
        ATOZ_PATH=str(root),
        ATOZ_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ATOZ_STATE_DIR=str(tmp_path / "state"),
    )

    def python(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, *argv]
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    init = python("-m", "atoz_watcher", "init-db")
    assert init.returncode == 0, init.stderr

    done = python("-c", RESCAN_PROBE)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"
