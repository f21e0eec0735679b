"""Handing freed memory back to the system after a whole-tree rescan."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

import pytest

from atoz_watcher.db.engine import SQLITE_CACHE_KIB, make_engine
from atoz_watcher.system import memory


def test_release_free_memory_trims_on_glibc() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    blocks = [ctypes.create_string_buffer(64 * 1024) for _ in range(200)]
    del blocks
    assert memory.release_free_memory() is True


def test_release_free_memory_is_a_no_op_without_malloc_trim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NoTrim:
        def __init__(self, _name: object) -> None:
            pass

        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(memory.ctypes, "CDLL", NoTrim)
    assert memory.release_free_memory() is False


def test_sqlite_connections_keep_a_small_page_cache(tmp_path: Path) -> None:
    """Each pooled connection keeps its page cache for good: 512 KiB each, not SQLite's 2 MiB."""
    engine = make_engine(f"sqlite:///{tmp_path / 'od.sqlite3'}")
    try:
        with engine.connect() as conn:
            cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    finally:
        engine.dispose()
    assert cache == -SQLITE_CACHE_KIB == -512
