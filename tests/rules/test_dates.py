"""The API's dates: Python's ``format_date`` and the SQL that makes the same text in SQLite."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime

import pytest

from atoz_watcher.rules.dates import format_date, sqlite_date_text

pytestmark = pytest.mark.timeout(30)

# As SQLite holds dates: SQLAlchemy's text (microseconds), text without them, a date alone, an
# ISO "T", Open Dental's no-date, dates before and at 1880, and text that is no calendar's date.
STORED = (
    "2020-01-01 08:00:00.000000",
    "2024-02-29 23:59:59.999999",
    "2024-02-29 23:59:59",
    "2023-06-15",
    "2023-06-15T10:11:12",
    "0001-01-01 00:00:00",
    "1879-12-31 23:59:59",
    "1880-01-01 00:00:00",
    "2020-02-30 10:00:00",
    "2021-02-29",
    "2020-13-01 00:00:00",
    "2020-00-10 00:00:00",
    "2020-05-00 00:00:00",
    "not a date",
    "",
)


@pytest.mark.parametrize("stored", STORED)
def test_sqlite_makes_the_text_python_makes(stored: str) -> None:
    with sqlite3.connect(":memory:") as conn:
        made = conn.execute(f"SELECT COALESCE({sqlite_date_text(':v')}, '')", {"v": stored})
        assert made.fetchone()[0] == format_date(stored)


def test_the_api_shows_seconds_and_no_date_as_blank() -> None:
    assert format_date("2020-01-01 08:00:00.123456") == "2020-01-01 08:00:00"
    assert format_date(datetime(2021, 3, 4, 5, 6, 7)) == "2021-03-04 05:06:07"
    assert format_date(date(2021, 3, 4)) == "2021-03-04 00:00:00"
    assert format_date("0001-01-01 00:00:00") == ""
    assert format_date("2020-02-30 10:00:00") == ""
    assert format_date(None) == ""
