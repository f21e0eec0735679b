"""Handing freed memory back to the system after a whole-tree rescan."""

from __future__ import annotations

import ctypes
import platform

import pytest

from atoz_watcher import memory


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
