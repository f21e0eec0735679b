"""``system.status.StatusBoard``: the daemon writes its facts as they change, from several
threads; the Health page reads them whole."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from atoz_watcher.system.status import Status, StatusBoard

ROUNDS = 2000


def test_a_new_board_says_nothing_has_happened() -> None:
    assert StatusBoard().snapshot() == Status()
    assert Status().started is None
    assert Status().watch_mode == ""


def test_updates_show_in_the_next_snapshot_not_in_an_earlier_one() -> None:
    board = StatusBoard()
    started = datetime(2026, 12, 6, 5, 0)
    before = board.snapshot()

    board.update(started=started, watch_mode="polling", watched_folders=12)
    board.update(pending_files=3)

    assert before == Status()
    assert board.snapshot() == Status(
        started=started, watch_mode="polling", watched_folders=12, pending_files=3
    )


def test_an_unknown_fact_is_refused_and_changes_nothing() -> None:
    board = StatusBoard()
    board.update(pending_files=1)

    with pytest.raises(TypeError):
        board.update(pending_files=2, no_such_fact=1)

    assert board.snapshot().pending_files == 1


def test_threads_updating_different_facts_lose_none() -> None:
    board = StatusBoard()
    fields = ("pending_files", "retrying_files", "thumbnail_queue", "watched_folders")
    go = threading.Event()

    def count(field: str) -> None:
        go.wait(30)
        for n in range(1, ROUNDS + 1):
            board.update(**{field: n})

    threads = [threading.Thread(target=count, args=(field,)) for field in fields]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(60)

    snapshot = board.snapshot()
    assert [getattr(snapshot, field) for field in fields] == [ROUNDS] * len(fields)
