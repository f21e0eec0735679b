"""Where a document's bytes live: Open Dental's A-to-Z folder, or the ``document`` row itself.

One small interface, used by Upload, the materialiser and the SFTP endpoints.
"""

from __future__ import annotations

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
]
