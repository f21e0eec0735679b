"""LocalAtoZ: the bytes are a file in the patient's folder, as Open Dental keeps them.

Every step goes through ``contained.Tree``: a letter or patient folder, or a file, that is a
link is refused (``LinkRefusedError``), never followed.
"""

from __future__ import annotations

import errno
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

from atoz_watcher.rules.layout import letter_folder
from atoz_watcher.rules.naming import free_name_candidates
from atoz_watcher.storage.base import Content, Stored, require_plain
from atoz_watcher.storage.spool import Spool
from atoz_watcher.system.contained import Folder, Tree


def _write_free_name(
    folder: Folder, data: bytes | BinaryIO, name: str, taken: Collection[str]
) -> str:
    """Write ``data`` under a free name near ``name`` in ``folder`` (never replacing)."""
    # A hidden temporary name: the watcher, like Open Dental, never takes in a dot file.
    temporary = folder.write_temporary(data, suffix=".upload")
    try:
        return _move_to_free_name(folder, temporary, name, taken)
    except BaseException:
        folder.unlink(temporary, missing_ok=True)
        raise


def _move_to_free_name(
    folder: Folder,
    temporary: str,
    name: str,
    taken: Collection[str],
    *,
    source: Folder | None = None,
) -> str:
    """Rename ``temporary`` (in ``source``, else in ``folder``) to ``name`` in ``folder``,
    x-prefixed while that is taken; never replaces."""
    for candidate in free_name_candidates(name):
        if candidate not in taken:
            try:
                if source is None:
                    folder.rename_noreplace(temporary, candidate)
                else:
                    folder.move_in(source, temporary, candidate)
            except FileExistsError:
                pass
            else:
                return candidate
    raise FileExistsError(f"no free name near {name} in {folder.relative}")


class LocalAtoZ:
    kind = "LocalAtoZ"

    def __init__(self, root: Path) -> None:
        self._root = root
        self._tree = Tree(root)

    def _parts(self, folder: str) -> tuple[str, str]:
        name = require_plain(folder, "patient folder")
        return (letter_folder(name), name)

    def put(self, *, folder: str, file_name: str, data: Content, taken: Collection[str]) -> Stored:
        parts = self._parts(folder)
        name = require_plain(file_name, "file name")
        if isinstance(data, Spool):
            # Written and fsynced in the root, on the same file system: moved, not copied.
            # The caller discards the spool if it is still there after a failure.
            with (
                self._tree.folder(()) as root,
                self._tree.folder(parts, create=True) as directory,
            ):
                try:
                    name = _move_to_free_name(directory, data.path.name, name, taken, source=root)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    # The patient folder is another file system (mounted below the root).
                    with root.open_read(data.path.name) as spooled:
                        name = _write_free_name(directory, spooled, name, taken)
                    root.unlink(data.path.name, missing_ok=True)
                directory.fsync()
            return Stored(file_name=name, path=self._root.joinpath(*parts, name))
        with self._tree.folder(parts, create=True) as directory:
            name = _write_free_name(directory, data, name, taken)
            directory.fsync()
        return Stored(file_name=name, path=self._root.joinpath(*parts, name))

    def new_spool(self) -> Spool:
        # In the root: the same file system as every patient folder, ignored by the watcher.
        return Spool(self._root)

    def discard(self, stored: Stored) -> None:
        if stored.path is None:
            return
        parts = self._tree.parts(stored.path)
        with self._tree.folder(parts[:-1]) as directory:
            directory.unlink(parts[-1], missing_ok=True)

    def read(self, *, folder: str, file_name: str, raw_base64: str) -> bytes:
        del raw_base64
        with self._tree.folder(self._parts(folder)) as directory:
            return directory.read_bytes(require_plain(file_name, "file name"))
