"""RetryBook: exponential backoff for files that failed for a transient reason."""

from __future__ import annotations

import pytest

from atoz_watcher.watch.retry import RetryBook


class FakeClock:
    """``now`` is set by the test; the code under test never waits."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(**kwargs: float) -> tuple[RetryBook, FakeClock]:
    clock = FakeClock(100.0)  # not 0, so due times are clearly relative to now
    return RetryBook(clock=clock, **kwargs), clock


class TestBackoff:
    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            pytest.param({}, [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600], id="defaults"),
            pytest.param({"first_s": 1, "factor": 3, "max_s": 50}, [1, 3, 9, 27, 50, 50], id="x3"),
            pytest.param({"first_s": 5, "factor": 1, "max_s": 60}, [5, 5, 5], id="constant"),
            pytest.param({"first_s": 7, "max_s": 7}, [7, 7, 7], id="first-is-max"),
            pytest.param({"first_s": 0.5, "max_s": 3}, [0.5, 1, 2, 3, 3], id="fractions"),
        ],
    )
    def test_sequence(self, kwargs: dict[str, float], expected: list[float]) -> None:
        book, _ = make(**kwargs)
        assert [book.fail("a.jpg") for _ in expected] == expected

    def test_thousands_of_failures_stay_capped(self) -> None:
        # first_s * factor**n would overflow a float after about a thousand failures.
        book, _ = make()
        delays = [book.fail("a.jpg") for _ in range(5000)]
        assert delays[-1] == 600
        assert book.attempts("a.jpg") == 5000

    def test_paths_back_off_independently(self) -> None:
        book, _ = make()
        assert [book.fail("a.jpg"), book.fail("a.jpg"), book.fail("b.jpg")] == [2, 4, 2]

    def test_backs_off_further_after_due(self) -> None:
        book, clock = make()
        assert book.fail("a.jpg") == 2
        clock.now += 2
        assert book.due() == ["a.jpg"]
        assert book.attempts("a.jpg") == 1
        assert book.fail("a.jpg") == 4

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"first_s": 0}, id="first-zero"),
            pytest.param({"first_s": -1}, id="first-negative"),
            pytest.param({"factor": 0.5}, id="shrinking"),
            pytest.param({"first_s": 10, "max_s": 5}, id="max-below-first"),
        ],
    )
    def test_rejects_nonsense(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="first_s"):
            RetryBook(clock=FakeClock(), **kwargs)


class TestDue:
    def test_only_after_the_delay(self) -> None:
        book, clock = make()
        book.fail("a.jpg")
        assert book.due() == []
        clock.now = 101.9
        assert book.due() == []
        clock.now = 102.0
        assert book.due() == ["a.jpg"]
        assert book.due() == []  # handed out once
        assert len(book) == 0

    def test_earliest_first_and_only_the_due(self) -> None:
        book, clock = make()
        book.fail("slow.jpg")
        book.fail("slow.jpg")  # due at 104
        book.fail("fast.jpg")  # due at 102
        book.fail("slower.jpg")
        book.fail("slower.jpg")
        book.fail("slower.jpg")  # due at 108
        clock.now = 105.0
        assert book.due() == ["fast.jpg", "slow.jpg"]
        assert len(book) == 1
        clock.now = 108.0
        assert book.due() == ["slower.jpg"]

    def test_failing_again_while_waiting_reschedules(self) -> None:
        book, clock = make()
        book.fail("a.jpg")  # due at 102
        clock.now = 101.0
        book.fail("a.jpg")  # now due at 105; the 102 entry is stale
        assert len(book) == 1
        clock.now = 102.0
        assert book.due() == []
        assert book.next_due() == pytest.approx(3.0)
        clock.now = 105.0
        assert book.due() == ["a.jpg"]
        assert book.due() == []


class TestSucceed:
    def test_resets_the_count_and_backoff(self) -> None:
        book, _ = make()
        book.fail("a.jpg")
        book.fail("a.jpg")
        book.succeed("a.jpg")
        assert book.attempts("a.jpg") == 0
        assert len(book) == 0
        assert book.fail("a.jpg") == 2

    def test_while_waiting_it_never_comes_due(self) -> None:
        book, clock = make()
        book.fail("a.jpg")
        book.fail("b.jpg")
        book.succeed("a.jpg")
        assert len(book) == 1
        clock.now = 200.0
        assert book.due() == ["b.jpg"]

    def test_after_due(self) -> None:
        book, clock = make()
        book.fail("a.jpg")
        clock.now = 102.0
        assert book.due() == ["a.jpg"]
        book.succeed("a.jpg")
        assert book.attempts("a.jpg") == 0
        assert len(book) == 0

    def test_unknown_is_fine(self) -> None:
        book, _ = make()
        book.succeed("never.jpg")
        assert len(book) == 0


class TestAttemptsAndLen:
    def test_attempts(self) -> None:
        book, _ = make()
        assert book.attempts("a.jpg") == 0
        for expected in (1, 2, 3):
            book.fail("a.jpg")
            assert book.attempts("a.jpg") == expected
        assert book.attempts("b.jpg") == 0

    def test_len_counts_waiting_paths_once(self) -> None:
        book, clock = make()
        assert len(book) == 0
        book.fail("a.jpg")
        book.fail("a.jpg")
        book.fail("b.jpg")
        assert len(book) == 2
        clock.now = 102.0
        assert book.due() == ["b.jpg"]
        assert len(book) == 1


class TestNextDue:
    def test_none_when_nothing_waits(self) -> None:
        book, _ = make()
        assert book.next_due() is None

    def test_counts_down_to_zero(self) -> None:
        book, clock = make()
        book.fail("a.jpg")
        book.fail("a.jpg")  # 4 s
        seen = []
        for now in (100.0, 101.0, 103.5, 104.0, 110.0):
            clock.now = now
            seen.append(book.next_due())
        assert seen == pytest.approx([4.0, 3.0, 0.5, 0.0, 0.0])

    def test_earliest_waiting_path(self) -> None:
        book, _ = make()
        book.fail("a.jpg")
        book.fail("a.jpg")  # 4 s
        book.fail("b.jpg")  # 2 s
        assert book.next_due() == pytest.approx(2.0)
        book.succeed("b.jpg")  # its heap entry is stale now
        assert book.next_due() == pytest.approx(4.0)

    def test_none_after_due_hands_out_everything(self) -> None:
        book, clock = make()
        book.fail("a.jpg")
        clock.now = 102.0
        assert book.due() == ["a.jpg"]
        assert book.next_due() is None
        assert book.attempts("a.jpg") == 1
