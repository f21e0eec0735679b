"""The writes to ``document`` (new rows, filling a row with its stored file, undoing one) and
the reads they depend on, as keyword-only functions over a Connection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, text

from atoz_watcher.db.shape import TableShape
from atoz_watcher.errors import DatabaseUnavailableError

# document.RawBase64 is MEDIUMTEXT on MySQL/MariaDB, and the UPDATE that fills it must fit in
# one packet: over either, the server refuses (and drops the connection for the packet).
MEDIUMTEXT_BYTES: Final = 16 * 1024 * 1024 - 1
PACKET_SLACK: Final = 64 * 1024

# The columns ``fill`` sets: the file's and what goes with it. Column names cannot be bound
# parameters, so only these are ever put in the statement's text.
FILLED_COLUMNS: Final = frozenset({"FileName", "RawBase64", "Description", "Note", "DateTStamp"})


def insert(conn: Connection, *, shape: TableShape, row: Mapping[str, object]) -> int:
    """Insert one ``document`` row fitted to the live table's ``shape``; its DocNum."""
    key = conn.execute(shape.table.insert(), [shape.complete(row)]).inserted_primary_key
    if key is None:
        raise DatabaseUnavailableError("the database returned no DocNum for the new row")
    return int(key[0])


def insert_many(
    conn: Connection, *, shape: TableShape, rows: Iterable[Mapping[str, object]]
) -> None:
    """Insert ``document`` rows fitted to the live table's ``shape``, in one statement."""
    conn.execute(shape.table.insert(), shape.complete_all(rows))


def fill(conn: Connection, *, doc_num: int, fields: Mapping[str, object]) -> None:
    """Set ``fields`` (columns of ``FILLED_COLUMNS``) on row ``doc_num``."""
    unknown = set(fields) - FILLED_COLUMNS
    if unknown:
        raise ValueError(f"not a column fill() sets: {', '.join(sorted(unknown))}")
    assignments = ", ".join(f"{column} = :{column}" for column in fields)
    conn.execute(
        text(f"UPDATE document SET {assignments} WHERE DocNum = :doc_num"),
        {**fields, "doc_num": doc_num},
    )


def delete(conn: Connection, *, doc_num: int) -> None:
    conn.execute(text("DELETE FROM document WHERE DocNum = :d"), {"d": doc_num})


@dataclass(frozen=True, slots=True)
class FillTarget:
    """What materialising row ``doc_num`` checks and keeps: its patient, whether it is still
    a placeholder (its Note, no FileName) and whether it has a Description of its own."""

    pat_num: int
    note: str | None
    file_name: str | None
    description: str | None


def fill_target(conn: Connection, *, doc_num: int) -> FillTarget | None:
    """Row ``doc_num`` as materialising sees it; None when it is gone."""
    row = conn.execute(
        text("SELECT PatNum, Note, FileName, Description FROM document WHERE DocNum = :d"),
        {"d": doc_num},
    ).first()
    if row is None:
        return None
    return FillTarget(pat_num=int(row[0]), note=row[1], file_name=row[2], description=row[3])


def raw_base64_limit(conn: Connection) -> int | None:
    """The longest base64 document.RawBase64 takes on MySQL/MariaDB (MEDIUMTEXT, and one
    packet); None on other databases."""
    if conn.dialect.name not in {"mysql", "mariadb"}:
        return None
    packet = int(conn.execute(text("SELECT @@max_allowed_packet")).scalar() or 0)
    return min(MEDIUMTEXT_BYTES, packet - PACKET_SLACK)
