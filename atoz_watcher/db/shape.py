"""Inserts that fit a table as the live database has it.

Open Dental's tables differ by version (25.4 adds NOT NULL columns to ``document``) and MariaDB's
strict mode rejects an INSERT that leaves out a NOT NULL column without a default. So we read the
table's real columns once and fill every NOT NULL column we do not know with its type's zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, inspect, types

from atoz_watcher.errors import ConfigError

_NO_DATE = dt.datetime(1, 1, 1)  # Open Dental's "no date"
# A MySQL TIMESTAMP starts at 1970-01-01 00:00:01 UTC: 0001-01-01 fails in strict mode. The
# next midnight is inside the range in every session time zone.
_NO_TIMESTAMP = dt.datetime(1970, 1, 2)


# The value Open Dental's own code writes for a column it has nothing for, by column type.
# Order matters: TIMESTAMP is a DateTime, and Boolean/Numeric come before the String fallback.
_ZEROS: tuple[tuple[type[types.TypeEngine[Any]], object], ...] = (
    (types.TIMESTAMP, _NO_TIMESTAMP),
    (types.DateTime, _NO_DATE),
    (types.Date, _NO_DATE.date()),
    (types.Time, dt.time(0)),
    (types.Integer, 0),
    (types.Numeric, 0),
    (types.Float, 0),
    (types.Boolean, 0),
    (types.LargeBinary, b""),
    (types._Binary, b""),  # noqa: SLF001 - MySQL's BLOB variants
)


def zero_value(type_: types.TypeEngine[Any]) -> object:
    """The zero of a column type: '' for text and anything unknown."""
    if isinstance(type_, types.Enum) and type_.enums:
        return type_.enums[0]  # MySQL's implicit default; strict mode rejects ''
    for kind, value in _ZEROS:
        if isinstance(type_, kind):
            return value
    return ""


def _needs_value(column: Column[Any]) -> bool:
    return (
        not column.nullable
        and column.server_default is None
        and column is not column.table.autoincrement_column
    )


@dataclass(frozen=True)
class TableShape:
    """One table as it is: its reflected definition and the fillers its INSERTs need."""

    table: Table
    fillers: Mapping[str, object]

    @classmethod
    def reflect(cls, conn: Connection, name: str) -> TableShape:
        if not inspect(conn).has_table(name):
            raise ConfigError(
                f"the database has no {name!r} table; run `atoz-watcher init-db` "
                "or point database_url at Open Dental's database"
            )
        table = Table(name, MetaData(), autoload_with=conn)
        fillers = {c.name: zero_value(c.type) for c in table.columns if _needs_value(c)}
        return cls(table=table, fillers=fillers)

    @cached_property
    def column_names(self) -> frozenset[str]:
        return frozenset(self.table.columns.keys())

    def complete(self, values: Mapping[str, object]) -> dict[str, object]:
        """``values`` limited to columns the table has, plus a filler for every other NOT NULL
        column without a default."""
        names = self.column_names
        row = {key: value for key, value in self.fillers.items() if key not in values}
        row.update((key, value) for key, value in values.items() if key in names)
        return row

    def complete_all(self, rows: Iterable[Mapping[str, object]]) -> list[dict[str, object]]:
        return [self.complete(row) for row in rows]
