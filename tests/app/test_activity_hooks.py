"""What the front-desk page reads of the running service: the activity log the daemon, the
rescan command and the API write (how each document came, what went wrong) and the daemon's
status board. Real daemon, real API server, real SQLite and MariaDB."""

from __future__ import annotations

import io
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from atoz_watcher.app.commands.rescan import run_rescan
from atoz_watcher.app.rescans import arrival_detail
from atoz_watcher.db.activity import ActivityLog, Arrival, Way
from tests.support.api import PAYLOAD, api_settings, b64, serving
from tests.support.clinics import make_clinic, misc_and_xrays
from tests.support.daemons import running, settings_for
from tests.support.waiting import wait_for
from tests.support.worlds import World

UPLOAD = "/api/v1/documents/Upload"
SET_BY_URL = "/api/v1/documents/SetByUrl"


def _log(world: World) -> ActivityLog:
    return ActivityLog.in_state_dir(world.state)


def _way(world: World, doc_num: int) -> tuple[Way, str] | None:
    arrival = _log(world).ways([doc_num]).get(doc_num)
    return None if arrival is None else (arrival.way, arrival.detail)


def _settled(path: Path) -> None:
    """A file written a minute ago: a rescan takes it at once."""
    path.write_bytes(b"jpeg")
    old = datetime.now().timestamp() - 60
    os.utime(path, (old, old))


def _only_doc(world: World, pat_num: int) -> int:
    (row,) = world.documents(pat_num)
    return int(row["DocNum"])


@pytest.mark.parametrize(
    ("reason", "detail"),
    [
        ("startup", "startup"),
        ("periodic", "safety"),
        ("event-queue-overflow", "catch-up"),
        ("smb-resubscribed", "catch-up"),
    ],
)
def test_each_rescan_reason_has_its_arrival_detail(reason: str, detail: str) -> None:
    assert arrival_detail(reason) == detail


def test_the_daemon_records_startup_and_folder_arrivals(world: World) -> None:
    world, _, _ = misc_and_xrays(world)
    waiting = world.add_patient("Early", "Eve", "EarlyEve1")
    dropped = world.add_patient("Smith", "John", "SmithJohn2")
    _settled(world.folder("EarlyEve1") / "before.jpg")

    with running(world):
        wait_for(lambda: len(world.documents(waiting)) == 1)
        (world.folder("SmithJohn2") / "pano.jpg").write_bytes(b"jpeg")
        wait_for(lambda: len(world.documents(dropped)) == 1)
        wait_for(lambda: _way(world, _only_doc(world, dropped)) is not None)

    assert _way(world, _only_doc(world, waiting)) == (Way.RESCAN, "startup")
    assert _way(world, _only_doc(world, dropped)) == (Way.FOLDER, "")


def test_a_file_the_watcher_missed_is_recorded_as_caught_up(world: World) -> None:
    world, _, _ = misc_and_xrays(world)
    pat = world.add_patient("Late", "Lou", "LateLou3")
    folder = world.folder("LateLou3")

    # Polling once an hour: a file dropped now is found only by the catch-up rescan asked for
    # (as after an overflow of the event queue).
    with running(world, mode="polling", poll_interval=3600) as daemon:
        wait_for(lambda: daemon.board.snapshot().last_safety_rescan is not None)
        _settled(folder / "missed.jpg")
        daemon.request_rescan("event-queue-overflow")
        wait_for(lambda: len(world.documents(pat)) == 1)
        wait_for(lambda: _way(world, _only_doc(world, pat)) is not None)

    assert _way(world, _only_doc(world, pat)) == (Way.RESCAN, "catch-up")


def test_the_board_shows_the_mode_and_the_rescans_times(world: World) -> None:
    world, _, _ = misc_and_xrays(world)
    world.patients_with_folders("Board", 3)
    before = datetime.now().replace(microsecond=0)

    with running(world) as daemon:
        wait_for(lambda: daemon.board.snapshot().last_safety_rescan is not None)
        assert daemon.board.snapshot().last_catch_up is None
        daemon.request_rescan("event-queue-overflow")
        wait_for(lambda: daemon.board.snapshot().last_catch_up is not None)
        status = daemon.board.snapshot()

    assert status.watch_mode == "native"
    assert status.started is not None
    assert before <= status.started <= datetime.now()
    assert status.last_catch_up is not None
    assert status.last_safety_rescan is not None
    assert status.last_safety_rescan <= status.last_catch_up <= datetime.now()
    # The root, its letter folder B and the three patient folders.
    assert status.watched_folders == 5
    assert (status.pending_files, status.retrying_files) == (0, 0)


def test_the_polling_board_counts_the_polled_folders(world: World) -> None:
    world, _, _ = misc_and_xrays(world)
    world.patients_with_folders("Poll", 4)

    with running(world, mode="polling", poll_interval=0.2) as daemon:
        wait_for(lambda: daemon.board.snapshot().watched_folders == 4)
        assert daemon.board.snapshot().watch_mode == "polling"


def test_a_skipped_file_is_a_problem_and_litter_is_not(world: World) -> None:
    world, _, _ = misc_and_xrays(world)
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    since = datetime.now().replace(microsecond=0)

    with running(world):
        (folder / "Thumbs.db").write_bytes(b"litter")
        (folder / ".hidden.jpg").write_bytes(b"litter")
        (folder / os.fsdecode(b"scan\xff.jpg")).write_bytes(b"jpeg")
        (folder / "ok.jpg").write_bytes(b"jpeg")
        wait_for(lambda: len(world.documents(pat)) == 1)
        wait_for(lambda: _log(world).problems_since(since) != [])

    (problem,) = _log(world).problems_since(since)
    assert problem.kind == "undecodable-name"
    assert "not valid UTF-8" in problem.reason
    assert problem.place == "S/SmithJohn1/scan\\udcff.jpg"


def test_an_unmatched_patient_folder_is_a_problem_once_per_file(world: World) -> None:
    world, _, _ = misc_and_xrays(world)
    since = datetime.now().replace(microsecond=0)
    stray = world.root / "N" / "Nobody99"
    stray.mkdir(parents=True)

    def places() -> list[str]:
        return [p.place for p in _log(world).problems_since(since)]

    with running(world):
        (stray / "a.jpg").write_bytes(b"jpeg")
        wait_for(lambda: places() == ["N/Nobody99/a.jpg"])
        with (stray / "a.jpg").open("ab") as again:  # seen again: no second problem
            again.write(b"more")
        (stray / "b.jpg").write_bytes(b"jpeg")
        wait_for(lambda: "N/Nobody99/b.jpg" in places())

    problems = _log(world).problems_since(since)
    assert sorted(p.place for p in problems) == ["N/Nobody99/a.jpg", "N/Nobody99/b.jpg"]
    assert {p.kind for p in problems} == {"no-patient"}
    assert "matches no patient" in problems[0].reason


def test_the_daemon_prunes_the_log_at_start(world: World) -> None:
    log = _log(world)
    log.arrived([Arrival(1, Way.FOLDER)], at=datetime.now() - timedelta(days=31))
    log.arrived([Arrival(2, Way.FOLDER)], at=datetime.now() - timedelta(days=29))

    with running(world):
        wait_for(lambda: 1 not in log.ways([1]))

    assert sorted(log.ways([1, 2])) == [2]


def test_the_rescan_command_records_command_arrivals(bare_world: World) -> None:
    world, _, _ = misc_and_xrays(bare_world)
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    (world.folder("SmithJohn1") / "pano.jpg").write_bytes(b"jpeg")
    settings = settings_for(world, open_settle_seconds=0.001)

    run_rescan(settings, world.engine, pat_num=None, dry_run=False, out=io.StringIO())

    assert _way(world, _only_doc(world, pat)) == (Way.RESCAN, "command")


def test_api_upload_and_set_by_url_are_recorded_with_their_endpoint(bare_world: World) -> None:
    clinic = make_clinic(bare_world)
    world = clinic.world
    with serving(api_settings(world), world) as api:
        uploaded = api.post(
            UPLOAD, json={"PatNum": clinic.pat, "rawBase64": b64(PAYLOAD), "extension": ".jpg"}
        )
        placeholder = api.post(
            SET_BY_URL,
            json={"PatNum": clinic.pat, "url": "https://example.test/pano.png"},
        )
    assert uploaded.status_code == 201, uploaded.text
    assert placeholder.status_code == 201, placeholder.text

    assert _way(world, uploaded.json()["DocNum"]) == (Way.API, "Upload")
    assert _way(world, placeholder.json()["DocNum"]) == (Way.API, "SetByUrl")
