"""One inbox folder on disk, reached without following links, and its own subfolders.

An inbox below the A-to-Z root is walked from the root (``system.contained``, as every path
there); one outside it is taken as configured (like the root: it may be a mount reached
through a link the administrator made) and walked from itself. Either way a link inside the
inbox (a file, a subfolder, ``_Work/``) is refused, never followed.

Subfolders whose names start with ``_`` are the inbox's own (:data:`WORK` and the others) or
the staff's, and are never processed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from atoz_watcher.rules.naming import skip_reason, x_prefixed
from atoz_watcher.system.contained import Folder, OutsideRootError, Tree

WORK: Final = "_Work"
DONE: Final = "_Done"
UNMATCHED: Final = "_Unmatched"
DUPLICATES: Final = "_Duplicates"
TRASH: Final = "_Trash"  # discarded by staff (``Inbox.discard``); swept after keep_days
# The inbox's own folders, which it reaches without following a link (a link there is refused).
OWN_FOLDERS: Final = (WORK, DONE, UNMATCHED, DUPLICATES, TRASH)
REASON_SUFFIX: Final = ".reason.json"
DONE_SUFFIX: Final = ".done.json"
_CHUNK: Final = 1024 * 1024
_MAX_TRIES: Final = 1000


def hash_file(handle: Any) -> tuple[str, int]:  # noqa: ANN401 - a binary file object
    """SHA-256 (hex) and size of what is left to read of ``handle``."""
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True, slots=True)
class InboxPlace:
    """The inbox at ``path``: ``tree`` is walked from, ``base`` its parts below the tree."""

    path: Path
    tree: Tree
    base: tuple[str, ...]

    @classmethod
    def at(cls, path: Path, *, atoz_root: Path) -> InboxPlace:
        try:
            base = Tree(atoz_root).parts(path)
        except OutsideRootError:
            return cls(path, Tree(path), ())
        return cls(path, Tree(atoz_root), base)

    def folder(self, *sub: str, create: bool = False) -> AbstractContextManager[Folder]:
        """The inbox's folder ``sub`` (made where missing when ``create``)."""
        if create and sub:
            # The inbox itself is never made: a missing inbox is a configuration problem.
            with self.tree.folder(self.base) as inbox:
                inbox.open_dir(sub[0], create=True).close()
        return self.tree.folder((*self.base, *sub), create=create)

    def relative(self, path: Path) -> tuple[str, ...]:
        """``path``'s parts inside the inbox; OutsideRootError when it is not inside."""
        try:
            parts = path.relative_to(self.path).parts
        except ValueError:
            raise OutsideRootError(f"{path} is not in the inbox {self.path}") from None
        if not parts or any(p in {"", ".", ".."} for p in parts):
            raise OutsideRootError(f"{path} is not a file in the inbox {self.path}")
        return parts

    def files(self) -> Iterator[tuple[str, ...]]:
        """Every file to process: in the inbox and its subfolders, except ``_`` folders and
        the names Open Dental would skip (hidden files, Thumbs.db); links are not followed."""
        with self.folder() as inbox:
            yield from _walk(inbox, ())


def _walk(folder: Folder, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    for name in names(folder):
        try:
            mode = folder.lstat(name).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            if name.startswith(("_", ".")):
                continue
            try:
                sub = folder.open_dir(name)
            except OSError:
                continue
            with sub:
                yield from _walk(sub, (*prefix, name))
        elif stat.S_ISREG(mode) and skip_reason(name) is None:
            yield (*prefix, name)


def names(folder: Folder) -> list[str]:
    """The entries of ``folder``, sorted, listed through its descriptor."""
    return sorted(os.listdir(folder.fd))  # noqa: PTH208 - a descriptor, not a path


def free_name(folder: Folder, wanted: str) -> str:
    """``wanted``, or ``x``-prefixed (as Open Dental makes a name free) while a file has it."""
    for candidate in x_prefixed(wanted):
        if not folder.lexists(candidate):
            return candidate
        if len(candidate) > _MAX_TRIES:
            break
    raise FileExistsError(f"no free name near {wanted} in {folder.relative}")


def write_json(folder: Folder, name: str, payload: dict[str, Any]) -> None:
    """``name`` in ``folder`` holds ``payload``, durably: written, synced, renamed over."""
    data = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
    temporary = folder.write_temporary(data, suffix=".tmp")
    try:
        folder.replace(temporary, name)
    except BaseException:
        folder.unlink(temporary, missing_ok=True)
        raise
    folder.fsync()


def read_json(folder: Folder, name: str) -> dict[str, Any] | None:
    """The JSON object in ``name``; None when it is missing or not one (a torn write)."""
    try:
        raw = folder.read_bytes(name)
    except FileNotFoundError:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def remove(folder: Folder, name: str) -> None:
    folder.unlink(name, missing_ok=True)
    folder.fsync()
