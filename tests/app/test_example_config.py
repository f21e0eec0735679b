"""The shipped config.example.toml stays valid and says what it promises."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atoz_watcher.config.settings import load_settings

EXAMPLE = Path(__file__).parents[2] / "config.example.toml"


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ATOZ_")]:
        monkeypatch.delenv(name)

    settings = load_settings(EXAMPLE, {})

    assert settings.atoz_path == Path("/mnt/OpenDentImages")
    assert settings.db_url.startswith("mysql+pymysql://")
    assert "CHANGE-ME" not in repr(settings)
    assert settings.journal_dir == Path("/var/lib/atoz-watcher/journal")
