import pytest

from atoz_watcher.system.backoff import next_delay


@pytest.mark.parametrize(
    ("previous", "first", "maximum", "factor", "expected"),
    [
        (0.0, 2.0, 600.0, 2.0, 2.0),  # the first failure waits ``first``
        (2.0, 2.0, 600.0, 2.0, 4.0),  # then doubles
        (400.0, 2.0, 600.0, 2.0, 600.0),  # never past the maximum
        (600.0, 2.0, 600.0, 2.0, 600.0),
        (1.0, 1.0, 2.0, 2.0, 2.0),  # the daemon's rescan: 1 s, then 2 s
        (3.0, 3.0, 100.0, 3.0, 9.0),
    ],
)
def test_next_delay(previous, first, maximum, factor, expected):
    assert next_delay(previous, first=first, maximum=maximum, factor=factor) == expected


def test_a_thousand_failures_stay_at_the_maximum():
    delay = 0.0
    for _ in range(1000):
        delay = next_delay(delay, first=2.0, maximum=600.0)
    assert delay == 600.0
