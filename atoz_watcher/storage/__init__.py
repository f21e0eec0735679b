"""Where a document's bytes live: Open Dental's A-to-Z folder, or the ``document`` row itself.

One small interface, used by Upload, the materialiser and the SFTP endpoints.
"""

from __future__ import annotations

from atoz_watcher.config.settings import Settings
from atoz_watcher.storage.base import Content, Storage, Stored, UnsafeNameError
from atoz_watcher.storage.indb import InDatabase
from atoz_watcher.storage.local import LocalAtoZ
from atoz_watcher.storage.spool import Spool

__all__ = [
    "Content",
    "InDatabase",
    "LocalAtoZ",
    "Spool",
    "Storage",
    "Stored",
    "UnsafeNameError",
    "storage_for",
]


def storage_for(settings: Settings) -> Storage:
    """The storage Open Dental is set to use (its AtoZfolderUsed), as ``settings.storage``."""
    if settings.storage == "InDatabase":
        return InDatabase()
    return LocalAtoZ(settings.atoz_path)
