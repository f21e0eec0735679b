"""Open Dental's Documents API: GET, Upload, SetByUrl under /api/v1."""

from __future__ import annotations

from atoz_watcher.api.app import create_app
from atoz_watcher.api.server import ApiServer

__all__ = ["ApiServer", "create_app"]
