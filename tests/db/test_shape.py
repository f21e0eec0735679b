"""Fillers for NOT NULL columns an INSERT does not name (MariaDB's strict mode rejects it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    select,
    text,
    types,
)
from sqlalchemy.dialects import mysql

from atoz_watcher.db.shape import TableShape, zero_value
from atoz_watcher.errors import ConfigError

NO_DATE = dt.datetime(1, 1, 1)  # Open Dental's "no date", 0001-01-01 00:00:00
# A MySQL TIMESTAMP cannot hold 0001-01-01 (its range starts 1970-01-01 00:00:01 UTC), so its
# filler must lie inside that range in any session time zone (MariaDB allows up to +13:00).
TIMESTAMP_SAFE = dt.datetime(1970, 1, 2)


class TestZeroValue:
    @pytest.mark.parametrize(
        ("type_", "expected"),
        [
            pytest.param(types.Integer(), 0, id="Integer"),
            pytest.param(types.BigInteger(), 0, id="BigInteger"),
            pytest.param(types.SmallInteger(), 0, id="SmallInteger"),
            pytest.param(mysql.TINYINT(unsigned=True), 0, id="mysql.TINYINT-unsigned"),
            pytest.param(mysql.TINYINT(), 0, id="mysql.TINYINT"),
            pytest.param(mysql.SMALLINT(unsigned=True), 0, id="mysql.SMALLINT-unsigned"),
            pytest.param(mysql.BIGINT(), 0, id="mysql.BIGINT"),
            pytest.param(mysql.INTEGER(), 0, id="mysql.INTEGER"),
            pytest.param(types.Boolean(), 0, id="Boolean"),
            pytest.param(types.Float(), 0, id="Float"),
            pytest.param(mysql.FLOAT(), 0, id="mysql.FLOAT"),
            pytest.param(mysql.DOUBLE(), 0, id="mysql.DOUBLE"),
            pytest.param(types.Numeric(10, 2), 0, id="Numeric"),
            pytest.param(mysql.DECIMAL(10, 2), 0, id="mysql.DECIMAL"),
            pytest.param(types.String(255), "", id="String"),
            pytest.param(mysql.VARCHAR(255), "", id="mysql.VARCHAR"),
            pytest.param(types.Text(), "", id="Text"),
            pytest.param(mysql.TEXT(), "", id="mysql.TEXT"),
            pytest.param(mysql.MEDIUMTEXT(), "", id="mysql.MEDIUMTEXT"),
            pytest.param(mysql.LONGTEXT(), "", id="mysql.LONGTEXT"),
            pytest.param(types.DateTime(), NO_DATE, id="DateTime"),
            pytest.param(mysql.DATETIME(), NO_DATE, id="mysql.DATETIME"),
            pytest.param(types.TIMESTAMP(), TIMESTAMP_SAFE, id="TIMESTAMP"),
            pytest.param(mysql.TIMESTAMP(), TIMESTAMP_SAFE, id="mysql.TIMESTAMP"),
            pytest.param(types.Date(), NO_DATE.date(), id="Date"),
            pytest.param(types.Time(), dt.time(0, 0), id="Time"),
            pytest.param(types.LargeBinary(), b"", id="LargeBinary"),
            pytest.param(mysql.BLOB(), b"", id="mysql.BLOB"),
            pytest.param(mysql.MEDIUMBLOB(), b"", id="mysql.MEDIUMBLOB"),
            pytest.param(mysql.LONGBLOB(), b"", id="mysql.LONGBLOB"),
            pytest.param(mysql.VARBINARY(16), b"", id="mysql.VARBINARY"),
            # MySQL's own implicit default for a NOT NULL ENUM is its first member; '' is
            # rejected in strict mode.
            pytest.param(types.Enum("a", "b", native_enum=True), "a", id="Enum"),
            pytest.param(mysql.ENUM("Patient", "NonPatient"), "Patient", id="mysql.ENUM"),
            pytest.param(types.NullType(), "", id="unknown"),
        ],
    )
    def test_zero_value(self, type_: types.TypeEngine[Any], expected: object) -> None:
        value = zero_value(type_)
        assert value == expected
        assert type(value) is type(expected)

    @pytest.mark.parametrize("offset_hours", [-12, 0, 13, 14])
    def test_timestamp_filler_fits_every_session_time_zone(self, offset_hours: int) -> None:
        value = zero_value(mysql.TIMESTAMP())
        assert isinstance(value, dt.datetime)
        as_utc = value.replace(tzinfo=dt.timezone(dt.timedelta(hours=offset_hours)))
        assert as_utc >= dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC)


@pytest.fixture
def conn() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def make_document(conn: Connection) -> None:
    """A ``document`` table like a newer Open Dental's: unknown NOT NULL columns, some with
    defaults, some nullable."""
    Table(
        "document",
        MetaData(),
        Column("DocNum", Integer, primary_key=True, autoincrement=True),
        Column("PatNum", BigInteger, nullable=False),
        Column("FileName", String(255), nullable=False),
        Column("Description", String(255), nullable=False, server_default=""),
        Column("ImgType", Integer, nullable=False, server_default=text("0")),
        Column("DateCreated", DateTime, nullable=False),
        Column("DegreesRotated", Float, nullable=False),
        Column("Note", Text, nullable=True),
        Column("RawBase64", LargeBinary, nullable=False),
        Column(
            "DateTStamp", types.TIMESTAMP, nullable=False, server_default=text("CURRENT_TIMESTAMP")
        ),
        Column("ChartLetterHash", String(255), nullable=False),  # 25.4, unknown to us
        Column("UserNum", BigInteger, nullable=False),  # 25.4, unknown to us
    ).create(conn)
    conn.commit()


FILLERS = {
    "PatNum": 0,
    "FileName": "",
    "DateCreated": NO_DATE,
    "DegreesRotated": 0,
    "RawBase64": b"",
    "ChartLetterHash": "",
    "UserNum": 0,
}


class TestTableShape:
    def test_fillers(self, conn: Connection) -> None:
        make_document(conn)
        shape = TableShape.reflect(conn, "document")
        assert dict(shape.fillers) == FILLERS

    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            pytest.param({}, FILLERS, id="nothing-given"),
            pytest.param(
                {"PatNum": 15, "FileName": "x.jpg"},
                FILLERS | {"PatNum": 15, "FileName": "x.jpg"},
                id="given-values-win",
            ),
            pytest.param(
                {"PatNum": 15, "Bogus": 1, "filename": "lower"},
                FILLERS | {"PatNum": 15},
                id="unknown-keys-dropped",
            ),
            pytest.param(
                {"Description": "d", "ImgType": 1, "Note": "n"},
                FILLERS | {"Description": "d", "ImgType": 1, "Note": "n"},
                id="defaulted-and-nullable-kept-when-given",
            ),
            pytest.param({"Note": None}, FILLERS | {"Note": None}, id="explicit-none-kept"),
            pytest.param({"DocNum": 77}, FILLERS | {"DocNum": 77}, id="explicit-pk-kept"),
        ],
    )
    def test_complete(
        self, conn: Connection, values: dict[str, object], expected: dict[str, object]
    ) -> None:
        make_document(conn)
        shape = TableShape.reflect(conn, "document")
        assert shape.complete(values) == expected

    def test_not_filled(self, conn: Connection) -> None:
        make_document(conn)
        row = TableShape.reflect(conn, "document").complete({})
        for name in ("DocNum", "Description", "ImgType", "Note", "DateTStamp"):
            assert name not in row

    def test_completed_rows_insert(self, conn: Connection) -> None:
        make_document(conn)
        shape = TableShape.reflect(conn, "document")
        rows = shape.complete_all([{"PatNum": 15, "FileName": "x.jpg"}, {"PatNum": 16}])
        conn.execute(shape.table.insert(), rows)
        got = conn.execute(
            select(
                shape.table.c.DocNum,
                shape.table.c.PatNum,
                shape.table.c.FileName,
                shape.table.c.Description,
                shape.table.c.ImgType,
                shape.table.c.DateCreated,
            ).order_by(shape.table.c.DocNum)
        ).all()
        assert [tuple(r) for r in got] == [
            (1, 15, "x.jpg", "", 0, NO_DATE),
            (2, 16, "", "", 0, NO_DATE),
        ]

    def test_column_names(self, conn: Connection) -> None:
        make_document(conn)
        shape = TableShape.reflect(conn, "document")
        assert shape.column_names == {
            "DocNum",
            "PatNum",
            "FileName",
            "Description",
            "ImgType",
            "DateCreated",
            "DegreesRotated",
            "Note",
            "RawBase64",
            "DateTStamp",
            "ChartLetterHash",
            "UserNum",
        }

    def test_primary_key_that_is_not_autoincrement_is_filled(self, conn: Connection) -> None:
        Table(
            "keyed",
            MetaData(),
            Column("Code", String(20), primary_key=True),
            Column("Label", String(20), nullable=False),
        ).create(conn)
        shape = TableShape.reflect(conn, "keyed")
        assert dict(shape.fillers) == {"Code": "", "Label": ""}

    def test_missing_table(self, conn: Connection) -> None:
        with pytest.raises(ConfigError, match="'document'"):
            TableShape.reflect(conn, "document")
