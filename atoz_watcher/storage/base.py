"""The storage interface."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from atoz_watcher.rules.naming import plain
from atoz_watcher.storage.spool import Spool

# What put stores: the bytes, or a finished spool holding them (a streamed Upload).
Content = bytes | Spool


class UnsafeNameError(ValueError):
    """A folder or file name that is not one plain path component (``..``, slashes, NUL)."""


def require_plain(name: str, what: str) -> str:
    """``name`` if it is a single path component; never lets a name leave its folder."""
    if not plain(name):
        raise UnsafeNameError(f"unsafe {what}: {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class Stored:
    """What ``put`` stored: the final FileName, and where the bytes went."""

    file_name: str
    path: Path | None = None  # LocalAtoZ: the file in the patient folder
    raw_base64: str = ""  # InDatabase: the content, for document.RawBase64


class Storage(Protocol):
    kind: str

    def put(self, *, folder: str, file_name: str, data: Content, taken: Collection[str]) -> Stored:
        """Store ``data`` (bytes, or a finished spool, which is moved, not copied) for the
        patient whose ImageFolder is ``folder`` under ``file_name``, or ``x``-prefixed while
        that name is in ``taken`` (those of ``naming.free_name_candidates(file_name)`` that the
        patient's rows have) or on disk. Never replaces an existing file."""
        ...

    def new_spool(self) -> Spool:
        """An empty spool whose file ``put`` can take without copying it."""
        ...

    def discard(self, stored: Stored) -> None:
        """Undo ``put`` (the row could not be written)."""
        ...

    def read(self, *, folder: str, file_name: str, raw_base64: str) -> bytes:
        """A stored document's bytes."""
        ...
