"""Dates as Open Dental's API shows them: ``yyyy-MM-dd HH:mm:ss``, and "" for no date."""

from __future__ import annotations

from datetime import date, datetime

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# Open Dental treats any date before 1880 as "no date" (0001-01-01 is what it stores); the API
# shows those as "".
FIRST_YEAR = 1880


def format_date(value: object) -> str:
    """``yyyy-MM-dd HH:mm:ss``; "" for no date (before 1880, MySQL's zero date, NULL)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip()[:26])
        except ValueError:
            return ""
    if isinstance(value, datetime):
        # isoformat, not strftime: the same text (DATE_FORMAT) at a fraction of the cost.
        return "" if value.year < FIRST_YEAR else value.isoformat(" ", "seconds")
    if isinstance(value, date):
        return "" if value.year < FIRST_YEAR else f"{value.isoformat()} 00:00:00"
    return ""


def mysql_date_text(column: str) -> str:
    """SQL for MySQL/MariaDB giving ``format_date``'s text of a DATETIME/DATE/TIMESTAMP
    ``column`` (an expression of ours, never a caller's), NULL for no date: before 1880, the
    zero date, and a date a lax ``sql_mode`` let in that no calendar has (2020-02-30,
    2020-00-10, 2020-05-00: PyMySQL cannot read those as dates either, so they always showed
    as ""). Its ``%`` are doubled for a DB-API ``format`` paramstyle."""
    return (
        f"CASE WHEN {column} >= '{FIRST_YEAR}-01-01'"
        f" AND DAYOFMONTH({column}) BETWEEN 1 AND DAYOFMONTH(LAST_DAY({column}))"
        f" THEN DATE_FORMAT({column}, '%%Y-%%m-%%d %%H:%%i:%%s') END"
    )


def sqlite_date_text(column: str) -> str:
    """SQL for SQLite giving ``format_date``'s text of a date ``column`` stored as text (an
    expression of ours), NULL for no date: before 1880, and text that is no calendar's date
    (SQLite takes any day up to 31 in any month; moved by "+0 days", 2020-02-30 becomes
    2020-03-01, so a date that is no calendar's differs from itself moved)."""
    day = f"substr({column}, 1, 10)"
    return (
        f"CASE WHEN {column} >= '{FIRST_YEAR}' AND date({day}, '+0 days') = {day}"
        f" THEN strftime('%Y-%m-%d %H:%M:%S', {column}) END"
    )
