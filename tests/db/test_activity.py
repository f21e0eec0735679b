"""``db.activity.ActivityLog``: how each document came and what went wrong, in its own SQLite
file that the daemon, the inbox and the API write (threads and processes at once) and the page
reads."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from atoz_watcher.db.activity import FILE_NAME, ActivityLog, Arrival, Problem, Way

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

WRITERS = 2
EACH = 300
NOON = datetime(2026, 12, 6, 12, 0, 0)


def _write(path: str, first: int, count: int, start: Event) -> None:
    """One writer: ``count`` arrivals from DocNum ``first``, one at a time, and a problem each."""
    log = ActivityLog(Path(path))
    start.wait(30)
    for doc_num in range(first, first + count):
        log.arrived([Arrival(doc_num, Way.FOLDER, "")])
        log.problem(Problem("unreadable", f"file {doc_num} could not be read", f"A/x{doc_num}"))


def test_what_one_writes_another_reads_from_the_state_dir(tmp_path: Path) -> None:
    writer = ActivityLog.in_state_dir(tmp_path / "state")
    writer.arrived([Arrival(1, Way.INBOX, "cover-sheet"), Arrival(2, Way.API, "Upload")], at=NOON)

    reader = ActivityLog.in_state_dir(tmp_path / "state")

    assert (tmp_path / "state" / FILE_NAME).is_file()
    assert reader.ways([1, 2, 3]) == {
        1: Arrival(1, Way.INBOX, "cover-sheet", NOON),
        2: Arrival(2, Way.API, "Upload", NOON),
    }


def test_a_docnum_recorded_again_keeps_its_first_way(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path / "a.sqlite3")
    log.arrived([Arrival(5, Way.FOLDER)], at=NOON)
    log.arrived([Arrival(5, Way.RESCAN, "safety")], at=NOON + timedelta(hours=1))

    assert log.ways([5]) == {5: Arrival(5, Way.FOLDER, "", NOON)}


def test_ways_of_many_docnums_at_once(tmp_path: Path) -> None:
    """More DocNums than one statement binds (the page asks for a screen of rows; a bench for
    thousands): every recorded one comes back, none other."""
    log = ActivityLog(tmp_path / "a.sqlite3")
    log.arrived([Arrival(n, Way.RESCAN, "startup") for n in range(1, 3001, 2)], at=NOON)

    found = log.ways(range(1, 3001))

    assert sorted(found) == list(range(1, 3001, 2))
    assert {(a.way, a.detail) for a in found.values()} == {(Way.RESCAN, "startup")}
    assert log.ways([]) == {}


def test_two_processes_and_two_threads_write_the_same_log(tmp_path: Path) -> None:
    path = tmp_path / "state" / FILE_NAME
    ActivityLog(path)  # made first, as the daemon would
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [
        context.Process(target=_write, args=(str(path), 1 + i * EACH, EACH, start))
        for i in range(WRITERS)
    ]
    shared = ActivityLog(path)

    def upload(first: int) -> None:
        for n in range(first, first + EACH):
            shared.arrived([Arrival(n, Way.API, "Upload")])

    threads = [threading.Thread(target=upload, args=(first,)) for first in (10_001, 20_001)]
    for process in processes:
        process.start()
    start.set()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for process in processes:
        process.join(60)

    assert [process.exitcode for process in processes] == [0] * WRITERS
    ways = ActivityLog(path).ways(range(1, 30_000))
    expected = [*range(1, 1 + WRITERS * EACH), *range(10_001, 10_001 + EACH)]
    expected += range(20_001, 20_001 + EACH)
    assert sorted(ways) == expected
    problems = ActivityLog(path).problems_since(NOON - timedelta(days=3650), limit=10_000)
    assert len(problems) == WRITERS * EACH


def test_problems_since_newest_first_and_at_most_limit(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path / "a.sqlite3")
    for hours, kind in ((0, "old"), (2, "second"), (1, "first"), (2, "third")):
        log.problem(Problem(kind, f"reason {kind}", f"A/{kind}.jpg", NOON + timedelta(hours=hours)))

    since_one = log.problems_since(NOON + timedelta(hours=1))
    two = log.problems_since(NOON, limit=2)

    # Newest first; two at the same second in the order they were recorded, the later first.
    assert [p.kind for p in since_one] == ["third", "second", "first"]
    assert since_one[-1] == Problem(
        "first", "reason first", "A/first.jpg", NOON + timedelta(hours=1)
    )
    assert [p.kind for p in two] == ["third", "second"]


def test_a_problem_without_a_time_is_now(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path / "a.sqlite3")
    before = datetime.now().replace(microsecond=0)
    log.problem(Problem("database", "the database did not answer"))

    (problem,) = log.problems_since(before)

    assert problem.kind == "database"
    assert problem.place == ""
    assert problem.at is not None
    assert before <= problem.at <= datetime.now()


def test_prune_removes_only_what_is_older(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path / "a.sqlite3")
    log.arrived([Arrival(1, Way.FOLDER), Arrival(2, Way.FOLDER)], at=NOON - timedelta(days=31))
    log.arrived([Arrival(3, Way.INBOX, "token")], at=NOON - timedelta(days=29))
    log.problem(Problem("old", "gone soon", at=NOON - timedelta(days=40)))
    log.problem(Problem("recent", "stays", at=NOON - timedelta(days=1)))

    gone = log.prune(NOON - timedelta(days=30))

    assert gone == 3
    assert sorted(log.ways([1, 2, 3])) == [3]
    assert [p.kind for p in log.problems_since(NOON - timedelta(days=365))] == ["recent"]
    assert log.prune(NOON - timedelta(days=30)) == 0


def test_a_write_the_log_cannot_make_is_dropped_not_raised(tmp_path: Path) -> None:
    """Recording must never fail the filing it records (a full disk, a broken file)."""
    path = tmp_path / "a.sqlite3"
    log = ActivityLog(path)
    path.unlink()
    path.mkdir()  # no database can be opened there now

    log.arrived([Arrival(1, Way.API, "Upload")])
    log.problem(Problem("database", "the database did not answer"))

    path.rmdir()
    assert ActivityLog(path).ways([1]) == {}


def test_a_closed_log_writes_the_file_found_at_its_path_on_its_next_call(tmp_path: Path) -> None:
    """The log keeps its connection between calls; once closed (its checkpoint done), a file
    put in its place (a restored backup, a fresh one) is the one written from then on."""
    path = tmp_path / "a.sqlite3"
    log = ActivityLog(path)
    log.arrived([Arrival(1, Way.API, "Upload")])
    log.close()
    path.rename(tmp_path / "old.sqlite3")
    ActivityLog(path).close()  # a fresh, empty log in its place

    log.arrived([Arrival(2, Way.API, "Upload")])

    assert sorted(ActivityLog(path).ways([1, 2])) == [2]
    assert sorted(ActivityLog(tmp_path / "old.sqlite3").ways([1, 2])) == [1]


def test_a_name_that_is_not_utf8_is_recorded_with_its_bytes_escaped(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path / "a.sqlite3")
    place = "S/SmithJohn1/" + "scan\udcff.jpg"  # how os.fsdecode keeps the byte 0xff

    log.problem(Problem("undecodable-name", "not UTF-8", place, NOON))

    (problem,) = log.problems_since(NOON)
    assert problem.place == "S/SmithJohn1/scan\\udcff.jpg"
