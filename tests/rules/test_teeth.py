"""Tooth numbers, normalised as Open Dental stores them."""

from __future__ import annotations

import pytest

from atoz_watcher.rules.teeth import IMPOSSIBLE_RANGE, ToothNumberError, normalise


class TestNormalise:
    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("", ""),
            ("   ", ""),
            ("1-5,8", "1,2,3,4,5,8"),
            ("8, 1 - 3", "1,2,3,8"),
            ("1-32", ",".join(str(n) for n in range(1, 33))),
            ("a-e", "A,B,C,D,E"),
            ("as-cs", "AS,BS,CS"),
            ("51-53", "51,52,53"),
            ("A,1", "1,A"),  # permanent first, then primary
            ("T,AS,82,32,51,A", "32,51,82,A,T,AS"),
            ("05", "5"),
            ("3,3,1-3", "1,2,3"),  # each tooth once
            ("7-7", "7"),
        ],
    )
    def test_valid(self, given: str, stored: str) -> None:
        assert normalise(given) == stored

    @pytest.mark.parametrize(
        ("given", "message"),
        [
            ("33", "33 is not a valid tooth number."),
            ("0", "0 is not a valid tooth number."),
            ("U", "U is not a valid tooth number."),
            ("1,,2", " is not a valid tooth number."),
            ("1-40", "40 is not a valid tooth number."),
            ("x-3", "X is not a valid tooth number."),
            ("1-2-3", "2-3 is not a valid tooth number."),
            ("\u0661", "\u0661 is not a valid tooth number."),  # an Arabic-Indic digit one
            ("5-1", IMPOSSIBLE_RANGE),
            ("E-A", IMPOSSIBLE_RANGE),
            ("30-A", IMPOSSIBLE_RANGE),  # a range stays within one kind of tooth
            ("32-51", IMPOSSIBLE_RANGE),
        ],
    )
    def test_invalid(self, given: str, message: str) -> None:
        with pytest.raises(ToothNumberError) as raised:
            normalise(given)
        assert str(raised.value) == message
