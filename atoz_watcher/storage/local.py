"""LocalAtoZ: the bytes are a file in the patient's folder, as Open Dental keeps them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection
from pathlib import Path

from atoz_watcher.fsops import fsync_dir, rename_noreplace
from atoz_watcher.layout import patient_dir
from atoz_watcher.storage.base import Content, Stored, require_plain
from atoz_watcher.storage.spool import Spool

# Give up finding a free x-prefixed name after this many tries (a name grows by one x each).
MAX_TRIES = 50


def _move_to_free_name(temporary: Path, directory: Path, name: str, taken: Collection[str]) -> str:
    """Rename ``temporary`` to ``name``, x-prefixed while that is taken; never replaces."""
    for _ in range(MAX_TRIES):
        if name not in taken:
            try:
                rename_noreplace(temporary, directory / name)
            except FileExistsError:
                pass
            else:
                return name
        name = require_plain(f"x{name}", "file name")
    raise FileExistsError(f"no free name near {name} in {directory}")


class LocalAtoZ:
    kind = "LocalAtoZ"

    def __init__(self, root: Path) -> None:
        self._root = root

    def folder(self, folder: str) -> Path:
        return patient_dir(self._root, require_plain(folder, "patient folder"))

    def put(self, *, folder: str, file_name: str, data: Content, taken: Collection[str]) -> Stored:
        directory = self.folder(folder)
        name = require_plain(file_name, "file name")
        directory.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Spool):
            # Written and fsynced beside the root, on the same file system: moved, not copied.
            # The caller discards the spool if it is still there after a failure.
            name = _move_to_free_name(data.path, directory, name, taken)
            fsync_dir(directory)
            return Stored(file_name=name, path=directory / name)
        # A hidden temporary name: the watcher, like Open Dental, never takes in a dot file.
        temporary = directory / f".{uuid.uuid4().hex}.upload"
        try:
            with temporary.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            name = _move_to_free_name(temporary, directory, name, taken)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        fsync_dir(directory)
        return Stored(file_name=name, path=directory / name)

    def new_spool(self) -> Spool:
        # In the root: the same file system as every patient folder, ignored by the watcher.
        return Spool(self._root)

    def discard(self, stored: Stored) -> None:
        if stored.path is not None:
            stored.path.unlink(missing_ok=True)

    def read(self, *, folder: str, file_name: str, raw_base64: str) -> bytes:
        del raw_base64
        return (self.folder(folder) / require_plain(file_name, "file name")).read_bytes()
