"""Health over plain HTTP, on SQLite and MariaDB: the database reachable, the watcher's facts
from its status board (or that none runs here), the inotify limit, the disk, and the problems
of the last 24 hours."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from atoz_watcher.db.activity import Problem
from atoz_watcher.system.status import StatusBoard
from atoz_watcher.ui.pages.health import database_fact
from tests.support.ui import VIEWER, serving_ui
from tests.support.worlds import World

pytestmark = pytest.mark.timeout(120)


def facts(html: str) -> dict[str, str]:
    return {
        key: re.sub(r"\s+", " ", value).strip()
        for key, value in re.findall(r'<dd data-fact="([^"]+)"[^>]*>(.*?)</dd>', html, re.DOTALL)
    }


def problem_rows(html: str) -> list[list[str]]:
    table = re.search(r'<table id="errors".*?<tbody>(.*?)</tbody>', html, re.DOTALL)
    assert table is not None
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.DOTALL)
    ]


def test_health_shows_the_watchers_facts_and_recent_problems(bare_world: World) -> None:
    board = StatusBoard()
    last_rescan = datetime.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    board.update(
        started=datetime.now(),
        watch_mode="native",
        watched_folders=1234,
        pending_files=3,
        retrying_files=1,
        thumbnail_queue=7,
        last_safety_rescan=last_rescan,
    )
    with serving_ui(bare_world, status=board) as site:
        log = site.parts.activity
        log.problem(
            Problem(
                "old", "a day and more ago", "A/Old1/x.jpg", datetime.now() - timedelta(hours=25)
            )
        )
        log.problem(Problem("unreadable", "cannot read the image", "S/SmithJohn1/x.jpg"))
        log.problem(Problem("unmatched", "no cover sheet", "inbox 0/scan.pdf"))
        with site.logged_in(VIEWER) as client:
            page = client.get("/ui/health")

    assert page.status_code == 200
    shown = facts(page.text)
    assert shown["database"] == "reachable"
    assert shown["watch-mode"].startswith("native")
    assert shown["watched-folders"] == "1,234"
    limit = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip())
    assert shown["inotify-limit"] == f"{limit:,}"
    assert shown["pending"] == "3 to register, 1 to retry"
    assert shown["thumbnail-queue"] == "7"
    assert shown["last-catch-up"] == "none yet"
    assert shown["last-safety-rescan"] in {
        last_rescan.strftime("%H:%M"),  # today
        last_rescan.strftime("%Y-%m-%d %H:%M"),  # the test ran just after midnight
    }
    assert "GB free of" in shown["disk-free"]
    rows = problem_rows(page.text)
    assert [row[1:] for row in rows] == [
        ["unmatched", "no cover sheet", "inbox 0/scan.pdf"],
        ["unreadable", "cannot read the image", "S/SmithJohn1/x.jpg"],
    ]


def test_health_without_a_watcher_in_the_process(bare_world: World) -> None:
    with serving_ui(bare_world, status=None) as site, site.logged_in(VIEWER) as client:
        page = client.get("/ui/health")

    shown = facts(page.text)
    assert shown["database"] == "reachable"
    for key in ("watch-mode", "watched-folders", "pending", "thumbnail-queue", "last-catch-up"):
        assert shown[key] == "not running in this process"
    assert problem_rows(page.text) == []
    assert "None." in page.text


def test_health_says_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 1: the connection is refused at once (the shared MariaDB is
    # never touched).
    engine = create_engine("mysql+pymysql://nobody@127.0.0.1:1/opendental")
    try:
        fact = asyncio.run(database_fact(engine))
    finally:
        engine.dispose()
    assert fact.key == "database"
    assert fact.bad
    assert fact.value.startswith("unreachable: ")
    assert "Can't connect" in fact.value
