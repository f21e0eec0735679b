"""StabilityTracker: quiet period plus an unchanged stat, with a fake clock and a fake stat."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from atoz_watcher.watch.stability import StabilityTracker


class FakeClock:
    """``now`` is set by the test; times are tick/10 so comparisons with settle times are exact."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeStat:
    """path -> (size, mtime_ns) or an exception to raise; counts the calls per path."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, int] | OSError] = {}
        self.calls: Counter[str] = Counter()

    def __call__(self, path: str) -> os.stat_result:
        self.calls[path] += 1
        found = self.files.get(path)
        if found is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        if isinstance(found, OSError):
            raise found
        size, mtime_ns = found
        mtime = mtime_ns // 1_000_000_000
        return os.stat_result(
            (0o100644, 1, 1, 1, 0, 0, size, mtime, mtime, mtime), {"st_mtime_ns": mtime_ns}
        )

    def write(self, path: str, size: int, mtime_ns: int) -> None:
        self.files[path] = (size, mtime_ns)


def make(settle_s: float = 0.5) -> tuple[StabilityTracker, FakeClock, FakeStat]:
    clock = FakeClock()
    stat = FakeStat()
    return StabilityTracker(settle_s=settle_s, clock=clock, stat=stat), clock, stat


class TestChunkedWrite:
    # A scanner writes 5 chunks, 0.7 s apart (t = 0 .. 2.8), each heard as an event. The
    # settle time must be longer than the writer's pauses: see test_pause_longer_than_settle.
    @pytest.mark.parametrize(
        ("chunk_ticks", "settle_s", "ready_tick"),
        [
            pytest.param((0, 7, 14, 21, 28), 1.0, 38, id="5-chunks-over-3s-settle-1s"),
            pytest.param((0, 4, 8, 12, 16), 0.5, 21, id="5-chunks-0.4s-apart-settle-0.5s"),
            pytest.param((0,), 0.5, 5, id="one-chunk"),
        ],
    )
    def test_ready_once_after_last_chunk(
        self, chunk_ticks: tuple[int, ...], settle_s: float, ready_tick: int
    ) -> None:
        tracker, clock, stat = make(settle_s)
        handed: list[tuple[int, list[str]]] = []
        for tick in range(60):
            clock.now = tick / 10
            if tick in chunk_ticks:
                stat.write("a.jpg", size=1000 * (chunk_ticks.index(tick) + 1), mtime_ns=tick)
                tracker.touch("a.jpg")
            if found := tracker.ready():
                handed.append((tick, found))
        assert handed == [(ready_tick, ["a.jpg"])]
        assert "a.jpg" not in tracker
        assert len(tracker) == 0

    def test_pause_longer_than_settle_hands_over_early(self) -> None:
        # The rule cannot tell a pause from the end of the file; settle_s must cover pauses.
        tracker, clock, stat = make(0.5)
        stat.write("a.jpg", size=1000, mtime_ns=0)
        tracker.touch("a.jpg")
        clock.now = 0.5
        assert tracker.ready() == ["a.jpg"]


class TestGrowingWithoutEvents:
    def test_not_ready_until_the_stat_holds_still(self) -> None:
        # One event at t=0, then the file grows every 0.3 s until t=1.8 with no more events.
        tracker, clock, stat = make(0.5)
        stat.write("a.jpg", size=0, mtime_ns=0)
        tracker.touch("a.jpg")
        handed: list[tuple[int, list[str]]] = []
        for tick in range(1, 40):
            clock.now = tick / 10
            if tick % 3 == 0 and tick <= 18:
                stat.write("a.jpg", size=tick * 100, mtime_ns=tick)
            if found := tracker.ready():
                handed.append((tick, found))
        # Looks at 0.5, 1.0, 1.5, 2.0 each see a change (the last at 1.8); 2.5 sees none.
        assert handed == [(25, ["a.jpg"])]
        assert stat.calls["a.jpg"] == 1 + 5

    def test_mtime_change_alone_restarts(self) -> None:
        # Rewritten in place: same size, new mtime.
        tracker, clock, stat = make(0.5)
        stat.write("a.jpg", size=100, mtime_ns=1)
        tracker.touch("a.jpg")
        stat.write("a.jpg", size=100, mtime_ns=2)
        clock.now = 0.5
        assert tracker.ready() == []
        assert "a.jpg" in tracker
        clock.now = 1.0
        assert tracker.ready() == ["a.jpg"]

    def test_unstattable_at_touch_becomes_statable(self) -> None:
        # Remembered as None at the touch, so the first good stat is a change, not "stable".
        tracker, clock, stat = make(0.5)
        stat.files["a.jpg"] = PermissionError(13, "Permission denied", "a.jpg")
        tracker.touch("a.jpg")
        assert "a.jpg" in tracker
        stat.write("a.jpg", size=100, mtime_ns=1)
        clock.now = 0.5
        assert tracker.ready() == []
        clock.now = 1.0
        assert tracker.ready() == ["a.jpg"]


class TestStatErrors:
    def test_vanished_is_dropped(self) -> None:
        tracker, clock, stat = make(0.5)
        stat.write("a.jpg", size=100, mtime_ns=1)
        tracker.touch("a.jpg")
        del stat.files["a.jpg"]
        clock.now = 0.5
        assert tracker.ready() == []
        assert "a.jpg" not in tracker
        assert tracker.next_due() is None
        clock.now = 5.0
        assert tracker.ready() == []

    def test_missing_at_touch_and_after_is_dropped(self) -> None:
        tracker, clock, _ = make(0.5)
        tracker.touch("gone.jpg")
        assert "gone.jpg" in tracker
        clock.now = 0.5
        assert tracker.ready() == []
        assert len(tracker) == 0

    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(PermissionError(13, "Permission denied"), id="permission"),
            pytest.param(OSError(5, "Input/output error"), id="eio"),
        ],
    )
    def test_other_errors_are_returned(self, error: OSError) -> None:
        tracker, clock, stat = make(0.5)
        stat.write("a.jpg", size=100, mtime_ns=1)
        tracker.touch("a.jpg")
        stat.files["a.jpg"] = error
        clock.now = 0.5
        assert tracker.ready() == ["a.jpg"]
        assert "a.jpg" not in tracker


class TestTouchAndForget:
    def test_touch_again_restarts_the_quiet_period(self) -> None:
        tracker, clock, stat = make(0.5)
        stat.write("a.jpg", size=100, mtime_ns=1)
        tracker.touch("a.jpg")
        clock.now = 0.4
        tracker.touch("a.jpg")  # same stat: only the quiet period restarts
        clock.now = 0.5
        assert tracker.ready() == []
        clock.now = 0.8
        assert tracker.ready() == []
        clock.now = 0.9
        assert tracker.ready() == ["a.jpg"]

    def test_forget(self) -> None:
        tracker, clock, stat = make(0.5)
        stat.write("a.jpg", size=100, mtime_ns=1)
        stat.write("b.jpg", size=100, mtime_ns=1)
        tracker.touch("a.jpg")
        tracker.touch("b.jpg")
        tracker.forget("a.jpg")
        tracker.forget("never-seen.jpg")
        assert "a.jpg" not in tracker
        assert len(tracker) == 1
        clock.now = 0.5
        assert tracker.ready() == ["b.jpg"]
        assert stat.calls["a.jpg"] == 1  # only the touch

    def test_touch_after_hand_off_tracks_again(self) -> None:
        tracker, clock, stat = make(0.5)
        stat.write("a.jpg", size=100, mtime_ns=1)
        tracker.touch("a.jpg")
        clock.now = 0.5
        assert tracker.ready() == ["a.jpg"]
        tracker.touch("a.jpg")
        assert tracker.ready() == []
        clock.now = 1.0
        assert tracker.ready() == ["a.jpg"]

    def test_contains_other_types(self) -> None:
        tracker, _, _ = make()
        tracker.touch("a.jpg")
        assert "a.jpg" in tracker
        assert 1 not in tracker
        assert Path("a.jpg") not in tracker


class TestOrder:
    def test_first_touch_order_not_due_order(self) -> None:
        # b and a were touched again later, but all three come out in first-touch order.
        tracker, clock, stat = make(0.5)
        for name in ("c.jpg", "b.jpg", "a.jpg"):
            stat.write(name, size=1, mtime_ns=1)
        tracker.touch("c.jpg")
        tracker.touch("b.jpg")
        tracker.touch("a.jpg")
        clock.now = 0.2
        tracker.touch("b.jpg")
        clock.now = 0.3
        tracker.touch("c.jpg")
        clock.now = 1.0
        assert tracker.ready() == ["c.jpg", "b.jpg", "a.jpg"]

    def test_only_due_paths_in_a_batch(self) -> None:
        tracker, clock, stat = make(0.5)
        for name in ("a.jpg", "b.jpg", "c.jpg"):
            stat.write(name, size=1, mtime_ns=1)
        tracker.touch("a.jpg")
        clock.now = 0.2
        tracker.touch("b.jpg")
        clock.now = 0.4
        tracker.touch("c.jpg")
        clock.now = 0.7
        assert tracker.ready() == ["a.jpg", "b.jpg"]
        assert stat.calls["c.jpg"] == 1  # the touch only
        clock.now = 0.9
        assert tracker.ready() == ["c.jpg"]

    def test_touched_again_does_not_hold_up_others(self) -> None:
        tracker, clock, stat = make(0.5)
        stat.write("a.jpg", size=1, mtime_ns=1)
        stat.write("b.jpg", size=1, mtime_ns=1)
        tracker.touch("a.jpg")
        clock.now = 0.2
        tracker.touch("b.jpg")
        clock.now = 0.4
        tracker.touch("a.jpg")  # a is due at 0.9 now, b still at 0.7
        clock.now = 0.7
        assert tracker.ready() == ["b.jpg"]
        clock.now = 0.9
        assert tracker.ready() == ["a.jpg"]


class TestNoStatBeforeDue:
    def test_ready_does_not_stat_quiet_paths_early(self) -> None:
        tracker, clock, stat = make(0.5)
        names = [f"{i}.jpg" for i in range(100)]
        for name in names:
            stat.write(name, size=1, mtime_ns=1)
            tracker.touch(name)
        stat.calls.clear()
        for tick in range(5):
            clock.now = tick / 10
            assert tracker.ready() == []
        assert sum(stat.calls.values()) == 0
        clock.now = 0.5
        assert tracker.ready() == names
        assert stat.calls == Counter(dict.fromkeys(names, 1))

    def test_stops_at_first_not_yet_due(self) -> None:
        tracker, clock, stat = make(0.5)
        stat.write("early.jpg", size=1, mtime_ns=1)
        stat.write("late.jpg", size=1, mtime_ns=1)
        tracker.touch("early.jpg")
        clock.now = 0.3
        tracker.touch("late.jpg")
        stat.calls.clear()
        clock.now = 0.5
        assert tracker.ready() == ["early.jpg"]
        assert stat.calls == Counter({"early.jpg": 1})


class TestNextDue:
    def test_none_when_empty(self) -> None:
        tracker, _, _ = make()
        assert tracker.next_due() is None

    def test_counts_down_to_zero(self) -> None:
        tracker, clock, stat = make(1.0)
        stat.write("a.jpg", size=1, mtime_ns=1)
        tracker.touch("a.jpg")
        seen = []
        for tick in (0, 2, 5, 8, 10, 15):
            clock.now = tick / 10
            seen.append(tracker.next_due())
        assert seen == pytest.approx([1.0, 0.8, 0.5, 0.2, 0.0, 0.0])

    def test_earliest_path(self) -> None:
        tracker, clock, stat = make(1.0)
        stat.write("a.jpg", size=1, mtime_ns=1)
        stat.write("b.jpg", size=1, mtime_ns=1)
        tracker.touch("a.jpg")
        clock.now = 0.5
        tracker.touch("b.jpg")
        assert tracker.next_due() == pytest.approx(0.5)
        clock.now = 0.7
        tracker.touch("a.jpg")  # a is now due at 1.7, after b at 1.5
        assert tracker.next_due() == pytest.approx(0.8)

    def test_after_a_change_the_fresh_period_counts(self) -> None:
        tracker, clock, stat = make(1.0)
        stat.write("a.jpg", size=1, mtime_ns=1)
        tracker.touch("a.jpg")
        stat.write("a.jpg", size=2, mtime_ns=2)
        clock.now = 1.0
        assert tracker.ready() == []
        assert tracker.next_due() == pytest.approx(1.0)

    def test_none_after_everything_handed_over(self) -> None:
        tracker, clock, stat = make(0.5)
        stat.write("a.jpg", size=1, mtime_ns=1)
        tracker.touch("a.jpg")
        clock.now = 0.5
        assert tracker.ready() == ["a.jpg"]
        assert tracker.next_due() is None


def test_ten_thousand_paths() -> None:
    tracker, clock, stat = make(0.5)
    names = [f"patient/{i:05}.jpg" for i in range(10_000)]
    for name in names:
        stat.write(name, size=1, mtime_ns=1)
        tracker.touch(name)
    for name in names[::2]:  # a burst of second events for half of them
        tracker.touch(name)
    assert len(tracker) == 10_000
    clock.now = 0.5
    assert tracker.ready() == names
    assert len(tracker) == 0
    assert sum(stat.calls.values()) == 10_000 + 5_000 + 10_000


@pytest.mark.parametrize(("settle_s", "open_settle_s"), [(-1.0, None), (0.3, -1.0)])
def test_negative_quiet_period_rejected(settle_s: float, open_settle_s: float | None) -> None:
    with pytest.raises(ValueError, match="quiet periods"):
        StabilityTracker(settle_s=settle_s, open_settle_s=open_settle_s, clock=FakeClock())


class TestCloseEvents:
    """A close (or a rename into place) earns the short quiet period; otherwise the long one,
    so a scanner pausing between chunks with the file open is not handed on early."""

    def tracker(self) -> tuple[StabilityTracker, FakeClock, FakeStat]:
        clock, stat = FakeClock(), FakeStat()
        tracker = StabilityTracker(settle_s=0.3, open_settle_s=2.0, clock=clock, stat=stat)
        return tracker, clock, stat

    def test_closed_file_is_ready_after_the_short_period(self) -> None:
        tracker, clock, stat = self.tracker()
        stat.write("a", 10, 1)
        tracker.touch("a")
        tracker.touch("a", closed=True)
        clock.now = 0.29
        assert tracker.ready() == []
        clock.now = 0.3
        assert tracker.ready() == ["a"]

    def test_open_file_waits_for_the_long_period(self) -> None:
        tracker, clock, stat = self.tracker()
        stat.write("a", 10, 1)
        tracker.touch("a")
        clock.now = 1.0  # a pause between chunks, longer than the short period
        assert tracker.ready() == []
        assert tracker.next_due() == pytest.approx(1.0)
        clock.now = 2.0
        assert tracker.ready() == ["a"]

    def test_written_again_after_a_close_waits_long(self) -> None:
        tracker, clock, stat = self.tracker()
        stat.write("a", 10, 1)
        tracker.touch("a", closed=True)
        clock.now = 0.1
        stat.write("a", 20, 2)
        tracker.touch("a")  # reopened and appended to
        clock.now = 0.5
        assert tracker.ready() == []
        clock.now = 2.1
        assert tracker.ready() == ["a"]

    def test_both_queues_are_served_in_first_touch_order(self) -> None:
        tracker, clock, stat = self.tracker()
        for name in ("open", "closed"):
            stat.write(name, 1, 1)
        tracker.touch("open")
        tracker.touch("closed", closed=True)
        assert len(tracker) == 2
        assert "open" in tracker
        clock.now = 0.3
        assert tracker.ready() == ["closed"]
        clock.now = 2.0
        assert tracker.ready() == ["open"]
        assert tracker.next_due() is None


class TestRealFiles:
    """The real os.stat on files in tmp_path; mtimes are set with os.utime, so no sleeps."""

    def test_chunks_then_quiet(self, tmp_path: Path) -> None:
        path = tmp_path / "scan.jpg"
        name = str(path)
        clock = FakeClock()
        tracker = StabilityTracker(settle_s=1.0, clock=clock)

        with path.open("wb") as f:
            for chunk in range(3):
                f.write(b"x" * 4096)
                f.flush()
                os.utime(path, ns=(chunk * 1_000_000_000, chunk * 1_000_000_000))
                clock.now = chunk * 0.5
                tracker.touch(name)
                assert tracker.ready() == []
            # A fourth chunk with no event: caught by the look, not by a touch.
            f.write(b"x" * 4096)
            f.flush()
        os.utime(path, ns=(9_000_000_000, 9_000_000_000))

        clock.now = 2.0  # due (last touch at 1.0), but the size and mtime moved on
        assert tracker.ready() == []
        clock.now = 2.9
        assert tracker.ready() == []
        clock.now = 3.0
        assert tracker.ready() == [name]
        assert path.stat().st_size == 4 * 4096

    def test_same_size_new_mtime(self, tmp_path: Path) -> None:
        path = tmp_path / "scan.jpg"
        path.write_bytes(b"a" * 100)
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
        clock = FakeClock()
        tracker = StabilityTracker(settle_s=1.0, clock=clock)
        tracker.touch(str(path))
        path.write_bytes(b"b" * 100)
        os.utime(path, ns=(2_000_000_000, 2_000_000_000))
        clock.now = 1.0
        assert tracker.ready() == []
        clock.now = 2.0
        assert tracker.ready() == [str(path)]

    def test_deleted_file_dropped(self, tmp_path: Path) -> None:
        path = tmp_path / "scan.jpg"
        path.write_bytes(b"a")
        clock = FakeClock()
        tracker = StabilityTracker(settle_s=1.0, clock=clock)
        tracker.touch(str(path))
        path.unlink()
        clock.now = 1.0
        assert tracker.ready() == []
        assert len(tracker) == 0
