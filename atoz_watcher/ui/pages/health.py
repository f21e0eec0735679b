"""Health: is the database there, what the watcher is doing, the limits it runs into (inotify
watches, disk space) and the problems of the last 24 hours."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine, text

from atoz_watcher.system.status import Status
from atoz_watcher.ui.pages.words import when
from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.web import LoggedIn, Web

DATABASE_TIMEOUT_S: Final = 3.0
PROBLEMS_SHOWN: Final = 100
INOTIFY_LIMIT: Final = Path("/proc/sys/fs/inotify/max_user_watches")
NOT_HERE: Final = "not running in this process"
# Watches past this share of the limit: the next folders may go unwatched.
_INOTIFY_WARN: Final = 0.9
_DISK_WARN: Final = 0.05
_GB: Final = 1024**3


@dataclass(frozen=True, slots=True)
class Fact:
    key: str
    label: str
    value: str
    bad: bool = False


@dataclass(frozen=True, slots=True)
class ProblemView:
    when: str
    kind: str
    reason: str
    place: str


def _select_one(reader: Engine) -> None:
    with reader.connect() as conn:
        conn.execute(text("SELECT 1")).scalar_one()


async def database_fact(reader: Engine) -> Fact:
    """``reachable``, or why not, within DATABASE_TIMEOUT_S (the query is left to finish in
    its thread: the page does not wait on a database that does not answer)."""
    try:
        await asyncio.wait_for(asyncio.to_thread(_select_one, reader), DATABASE_TIMEOUT_S)
    except TimeoutError:
        return Fact("database", "Database", f"no answer within {DATABASE_TIMEOUT_S:g} s", bad=True)
    except Exception as exc:  # noqa: BLE001 - any failure is what the page reports
        cause = getattr(exc, "orig", None) or exc
        return Fact("database", "Database", f"unreachable: {_first_line(cause)}", bad=True)
    return Fact("database", "Database", "reachable")


def _first_line(exc: BaseException) -> str:
    words = str(exc).strip().splitlines()
    return (words[0] if words else type(exc).__name__)[:200]


def inotify_limit(path: Path = INOTIFY_LIMIT) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def watcher_facts(status: Status | None, limit: int | None) -> list[Fact]:
    limit_text = "unknown" if limit is None else f"{limit:,}"
    if status is None:
        return [
            Fact("watch-mode", "Watching", NOT_HERE),
            Fact("watched-folders", "Folders watched", NOT_HERE),
            Fact("inotify-limit", "inotify watch limit", limit_text),
            Fact("pending", "Files waiting", NOT_HERE),
            Fact("thumbnail-queue", "Thumbnails waiting", NOT_HERE),
            Fact("last-catch-up", "Last catch-up", NOT_HERE),
            Fact("last-safety-rescan", "Last safety rescan", NOT_HERE),
        ]
    near_limit = (
        limit is not None
        and status.watch_mode == "native"
        and status.watched_folders > limit * _INOTIFY_WARN
    )
    started = f" since {when(status.started)}" if status.started else ""
    return [
        Fact("watch-mode", "Watching", f"{status.watch_mode or 'starting'}{started}"),
        Fact("watched-folders", "Folders watched", f"{status.watched_folders:,}", near_limit),
        Fact("inotify-limit", "inotify watch limit", limit_text, near_limit),
        Fact(
            "pending",
            "Files waiting",
            f"{status.pending_files} to register, {status.retrying_files} to retry",
            status.retrying_files > 0,
        ),
        Fact("thumbnail-queue", "Thumbnails waiting", str(status.thumbnail_queue)),
        Fact("last-catch-up", "Last catch-up", when(status.last_catch_up) or "none yet"),
        Fact(
            "last-safety-rescan",
            "Last safety rescan",
            when(status.last_safety_rescan) or "none yet",
        ),
    ]


def disk_fact(root: Path) -> Fact:
    try:
        usage = shutil.disk_usage(root)
    except OSError as exc:
        return Fact("disk-free", "Disk free", f"unknown: {exc.strerror or exc}", bad=True)
    share = usage.free / usage.total if usage.total else 0.0
    value = f"{usage.free / _GB:.1f} GB free of {usage.total / _GB:.1f} GB ({share:.0%})"
    return Fact("disk-free", "Disk free (A-to-Z folder)", value, share < _DISK_WARN)


def router(parts: UiParts, web: Web) -> APIRouter:
    api = APIRouter()

    @api.get("/health", response_class=HTMLResponse)
    async def health(request: Request, viewer: LoggedIn) -> HTMLResponse:
        database = await database_fact(parts.reader)
        status = parts.status.snapshot() if parts.status is not None else None
        limit, disk, problems = await asyncio.to_thread(_blocking_facts, parts)
        watcher = watcher_facts(status, limit)
        return web.page(
            request,
            viewer,
            "health.html",
            title="Health",
            facts=[database, *watcher, disk],
            problems=problems,
        )

    return api


def _blocking_facts(parts: UiParts) -> tuple[int | None, Fact, list[ProblemView]]:
    since = datetime.now() - timedelta(hours=24)
    problems = [
        ProblemView(when(p.at), p.kind, p.reason, p.place)
        for p in parts.activity.problems_since(since, limit=PROBLEMS_SHOWN)
    ]
    return inotify_limit(), disk_fact(parts.root), problems
