"""What the front-desk page works with, built by the caller (``atoz_watcher.app.wiring``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from atoz_watcher.db.activity import ActivityLog
from atoz_watcher.imaging.jobs import OnStored
from atoz_watcher.imaging.render import Renderer
from atoz_watcher.inbox import Inbox
from atoz_watcher.storage import Storage
from atoz_watcher.system.status import StatusBoard


@dataclass(frozen=True)
class UiParts:
    reader: Engine  # Open Dental's database, reads (never wait for the registration lock)
    engine: Engine  # writes (the inbox assign goes through the Inbox, which has its own)
    storage: Storage
    root: Path  # the A-to-Z root as this machine sees it
    in_database: bool  # storage = "InDatabase"
    renderer: Renderer  # thumbnails and previews
    inbox: Inbox | None  # None without [[inbox.folders]]
    activity: ActivityLog
    status: StatusBoard | None  # None when no watcher runs in this process (`atoz-watcher api`)
    on_stored: OnStored  # thumbnails of files the page files
    today_limit: int
