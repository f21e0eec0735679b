"""`atoz-watcher run` killed with SIGKILL at each step of filing a batch from the inbox.

A 3-patient batch with a page before its first cover sheet (an unmatched part) is dropped in
the inbox of a running daemon, which the filer's step hook (``ATOZ_TEST_INBOX_KILL_AT``, read
by ``atoz-watcher run``) kills with SIGKILL at one durable step: claiming, splitting, filing
each part, moving the original to ``_Done/``. The next life recovers at start, and the audit
reads the page tags back from the filed files: every page filed exactly once (or, page 1,
in the one unmatched part), nothing left in ``_Work/`` or the inbox, no file without its row.
"""

from __future__ import annotations

import json
import signal
from datetime import date
from pathlib import Path

import pytest

from atoz_watcher.imaging.coversheet import CoverSheet
from tests.inbox.conftest import Desk, make_desk, orphans
from tests.support import scans
from tests.support.processes import DaemonLife
from tests.support.waiting import wait_for
from tests.support.worlds import World

pytestmark = pytest.mark.process  # the daemon as a process, killed

KILL_POINTS = [
    "claim.manifest",
    "claim.moved",
    "routed",
    "split.written",
    "split",
    "_Unmatched.sidecar",
    "part.unmatched",
    "part.filing:1",
    "part.created:1",
    "part.filed:1",
    "part.created:2",
    "part.filing:3",
    "part.filed:3",
    "finishing",
    "_Done.sidecar",
    "done.moved",
]
LIFE_S = 60.0


def _batch(desk: Desk, path: Path) -> Path:
    anna, ben, clara = desk.patients

    def cover(pat_num: int) -> scans.Cover:
        return scans.Cover(CoverSheet(pat_num, "Test Patient", date(1990, 5, 6)))

    items = [1, cover(anna), 2, 3, cover(ben), 4, cover(clara), 5, 6]
    return scans.write_pdf(scans.batch_pages(items, dpi=150), path, dpi=150)


def _finished(desk: Desk) -> bool:
    return desk.in_("_Work") == [] and "batch.pdf.done.json" in desk.in_("_Done")


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_at_any_step_files_each_page_exactly_once(world: World, tmp_path, point):
    desk = make_desk(world, tmp_path / "scans")
    anna, ben, clara = desk.patients
    source = _batch(desk, tmp_path / "batch-source.pdf")
    env = {"ATOZ_INBOX__FOLDERS": json.dumps([{"path": str(desk.folder)}])}
    log = tmp_path / "daemon.log"

    life = DaemonLife(world, log, ATOZ_TEST_INBOX_KILL_AT=point, **env)
    try:
        life.wait_ready()
        (desk.folder / "batch.pdf").write_bytes(source.read_bytes())
        wait_for(lambda: life.proc.poll() is not None, timeout=LIFE_S)
        assert life.proc.returncode == -signal.SIGKILL, life.tail()
        assert [e["step"] for e in life.events("inbox.test_kill")] == [point.split(":")[0]]
    finally:
        life.close()

    life = DaemonLife(world, log, **env)
    try:
        life.wait_ready()
        wait_for(lambda: _finished(desk), timeout=LIFE_S)
        assert life.terminate() == 0, life.tail()
    finally:
        life.close()

    assert desk.pages_of(anna) == [[2, 3]]
    assert desk.pages_of(ben) == [[4]]
    assert desk.pages_of(clara) == [[5, 6]]
    unmatched = [name for name in desk.in_("_Unmatched") if not name.endswith(".json")]
    assert len(unmatched) == 1
    assert scans.page_numbers(desk.folder / "_Unmatched" / unmatched[0]) == [1]
    assert desk.in_("_Work") == []
    assert desk.in_("_Done") == ["batch.pdf", "batch.pdf.done.json"]
    assert [p.name for p in desk.folder.iterdir() if p.is_file()] == []
    assert orphans(world) == []
    assert all(row["FileName"] for row in world.documents())
