"""The inbox's part in the activity log: each filed part is recorded with the rule that routed
it (or "assigned"), each file left unmatched as a problem an operator sees."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from atoz_watcher.db.activity import ActivityLog, Way
from atoz_watcher.imaging.coversheet import CoverSheet
from atoz_watcher.inbox import Routed, Unmatched
from tests.inbox.conftest import Desk
from tests.support import scans


def _write(items: list[scans.Cover | int], path: Path) -> Path:
    return scans.write_pdf(
        scans.batch_pages(items, dpi=150, how=scans.Degradation()), path, dpi=150
    )


def _ways(log: ActivityLog, outcome: Routed) -> list[tuple[Way, str]]:
    found = log.ways(outcome.doc_nums)
    return [(found[n].way, found[n].detail) for n in outcome.doc_nums]


def test_filed_parts_are_recorded_with_their_rule(desk: Desk, tmp_path: Path) -> None:
    anna, ben, _ = desk.patients
    log = ActivityLog(tmp_path / "activity.sqlite3")
    inbox = desk.inbox(activity=log)
    sheet = scans.Cover(CoverSheet(ben, "Test Patient", None))

    token = inbox.process(_write([1], desk.folder / f"PAT{anna}_consent.pdf"))
    batch = inbox.process(_write([sheet, 2, sheet, 3], desk.folder / "batch.pdf"))

    assert isinstance(token, Routed)
    assert isinstance(batch, Routed)
    assert _ways(log, token) == [(Way.INBOX, "token")]
    assert _ways(log, batch) == [(Way.INBOX, "cover-sheet")] * 2


def test_an_unmatched_file_is_a_problem_and_assigning_it_is_recorded(
    desk: Desk, tmp_path: Path
) -> None:
    anna = desk.patients[0]
    log = ActivityLog(tmp_path / "activity.sqlite3")
    inbox = desk.inbox(activity=log)
    since = datetime.now().replace(microsecond=0)

    unmatched = inbox.process(_write([42], desk.folder / "scan0042.pdf"))

    assert isinstance(unmatched, Unmatched)
    (problem,) = log.problems_since(since)
    assert (problem.kind, problem.place) == ("unmatched", "inbox 0/scan0042.pdf")
    assert problem.reason.startswith("no-route")

    (waiting,) = inbox.unmatched()
    assigned = inbox.assign(waiting.path, anna)

    assert isinstance(assigned, Routed)
    assert _ways(log, assigned) == [(Way.INBOX, "assigned")]


def test_without_a_log_nothing_is_recorded_and_filing_works(desk: Desk) -> None:
    anna = desk.patients[0]

    outcome = desk.inbox().process(_write([1], desk.folder / f"PAT{anna}.pdf"))

    assert isinstance(outcome, Routed)
    assert len(desk.world.documents(anna)) == 1
