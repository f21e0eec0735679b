"""Open Dental's tables with their exact table names, column names and MySQL types.

These models create missing tables (``init-db``) and type the rows we read. Writes go through
``db.schema.TableShape``, which works on each table as the live database has it, columns we do not
know included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    event,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.schema import SchemaItem, Table
from sqlalchemy.sql.ddl import BaseDDLElement
from sqlalchemy.types import TypeEngine
from sqlmodel import Field, SQLModel

_MYSQL = ("mysql", "mariadb")


def _variant(generic: TypeEngine[Any], specific: TypeEngine[Any]) -> TypeEngine[Any]:
    return generic.with_variant(specific, *_MYSQL)


# SQLite only auto-increments an INTEGER PRIMARY KEY, so the bigint keys are INTEGER there.
_PK = BigInteger().with_variant(Integer(), "sqlite")
_BIGINT = BigInteger()
_TINYINT = _variant(Integer(), mysql.TINYINT())
_TINYINT_U = _variant(Integer(), mysql.TINYINT(unsigned=True))
_SMALLINT_U = _variant(Integer(), mysql.SMALLINT(unsigned=True))
_INT = Integer()
_FLOAT = Float()
_DATETIME = DateTime()
_MEDIUMTEXT = _variant(Text(), mysql.MEDIUMTEXT())
_TEXT = Text()
_NO_DATE = text("'0001-01-01 00:00:00'")


def _pk() -> Any:  # noqa: ANN401 - SQLModel's Field returns Any
    return Field(default=None, sa_column=Column(_PK, primary_key=True, autoincrement=True))


def _col(type_: TypeEngine[Any], default: object, server_default: Any = None) -> Any:  # noqa: ANN401
    """A NOT NULL column with a Python default (what we insert) and, where MySQL allows one,
    a server default (what protects an INSERT that leaves it out)."""
    return Field(
        default=default,
        sa_column=Column(type_, nullable=False, server_default=server_default),
    )


def _str(length: int, default: str = "") -> Any:  # noqa: ANN401
    return _col(String(length), default, text(f"'{default}'"))


def _num(type_: TypeEngine[Any], default: float = 0) -> Any:  # noqa: ANN401
    return _col(type_, default, text(str(default)))


def _blob(type_: TypeEngine[Any]) -> Any:  # noqa: ANN401 - MySQL allows no default on text
    return _col(type_, "")


class Patient(SQLModel, table=True):
    __tablename__ = "patient"
    # Index names are global in SQLite, so each carries its table's name.
    __table_args__ = (Index("patient_ImageFolder", "ImageFolder"),)

    PatNum: int | None = _pk()
    LName: str = _str(100)
    FName: str = _str(100)
    PatStatus: int = _num(_TINYINT)
    ImageFolder: str = _str(100)


class Definition(SQLModel, table=True):
    __tablename__ = "definition"

    DefNum: int | None = _pk()
    Category: int = _num(_TINYINT_U)
    ItemOrder: int = _num(_SMALLINT_U)
    ItemName: str = _str(255)
    ItemValue: str = _str(255)
    ItemColor: int = _num(_INT)
    IsHidden: int = _num(_TINYINT)


class Document(SQLModel, table=True):
    __tablename__ = "document"
    __table_args__ = (
        Index("document_PatNum", "PatNum"),
        Index("document_PNDC", "PatNum", "DocCategory"),
        Index("document_MountItemNum", "MountItemNum"),
    )

    DocNum: int | None = _pk()
    Description: str = _str(255)
    DateCreated: datetime = _col(_DATETIME, datetime(1, 1, 1), _NO_DATE)
    DocCategory: int = _num(_BIGINT)
    PatNum: int = _num(_BIGINT)
    FileName: str = _str(255)
    ImgType: int = _num(_TINYINT_U)
    IsFlipped: int = _num(_TINYINT)
    DegreesRotated: float = _num(_FLOAT)
    ToothNumbers: str = _str(255)
    Note: str = _blob(_MEDIUMTEXT)
    SigIsTopaz: int = _num(_TINYINT)
    Signature: str = _blob(_TEXT)
    CropX: int = _num(_INT)
    CropY: int = _num(_INT)
    CropW: int = _num(_INT)
    CropH: int = _num(_INT)
    WindowingMin: int = _num(_INT)
    WindowingMax: int = _num(_INT)
    MountItemNum: int = _num(_BIGINT)
    # timestamp DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP on MySQL (see below).
    DateTStamp: datetime | None = Field(
        default=None,
        sa_column=Column(
            _variant(DateTime(), mysql.TIMESTAMP()),
            nullable=False,
            server_default=text("CURRENT_TIMESTAMP"),
        ),
    )
    RawBase64: str = _blob(_MEDIUMTEXT)
    Thumbnail: str = _blob(_TEXT)
    ExternalGUID: str = _str(255)
    ExternalSource: str = _str(255, "None")
    ProvNum: int = _num(_BIGINT)
    IsCropOld: int = _num(_TINYINT_U)
    OcrResponseData: str = _blob(_TEXT)
    ImageCaptureType: int = _num(_TINYINT)
    PrintHeading: int = _num(_TINYINT)


def _on_mysql(
    ddl: BaseDDLElement,
    target: SchemaItem | str,
    bind: Connection | None,
    tables: list[Table] | None = None,
    state: Any = None,  # noqa: ANN401
    *,
    dialect: Dialect,
    **_kw: Any,  # noqa: ANN401 - compiler, checkfirst: passed or not, by SQLAlchemy version
) -> bool:
    del ddl, target, bind, tables, state
    return dialect.name in _MYSQL


# SQLAlchemy renders no ON UPDATE clause, so MySQL gets the column as Open Dental declares it.
event.listen(
    Document.__table__,  # type: ignore[attr-defined]
    "after_create",
    DDL(  # type: ignore[no-untyped-call]
        "ALTER TABLE document MODIFY DateTStamp timestamp NOT NULL "
        "DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"
    ).execute_if(callable_=_on_mysql),
)


class Mount(SQLModel, table=True):
    __tablename__ = "mount"
    __table_args__ = (Index("mount_PatNum", "PatNum"),)

    MountNum: int | None = _pk()
    PatNum: int = _num(_BIGINT)
    DocCategory: int = _num(_BIGINT)
    DateCreated: datetime = _col(_DATETIME, datetime(1, 1, 1), _NO_DATE)
    Description: str = _str(255)
    Note: str = _blob(_TEXT)
    Width: int = _num(_INT)
    Height: int = _num(_INT)
    ColorBack: int = _num(_INT)
    ProvNum: int = _num(_BIGINT)
    ColorFore: int = _num(_INT)
    ColorTextBack: int = _num(_INT)
    FlipOnAcquire: int = _num(_TINYINT)
    AdjModeAfterSeries: int = _num(_TINYINT)


class MountItem(SQLModel, table=True):
    __tablename__ = "mountitem"
    __table_args__ = (Index("mountitem_MountNum", "MountNum"),)

    MountItemNum: int | None = _pk()
    MountNum: int = _num(_BIGINT)
    Xpos: int = _num(_INT)
    Ypos: int = _num(_INT)
    ItemOrder: int = _num(_INT)
    Width: int = _num(_INT)
    Height: int = _num(_INT)
    RotateOnAcquire: int = _num(_INT)
    ToothNumbers: str = _str(255)
    TextShowing: str = _blob(_TEXT)
    FontSize: float = _num(_FLOAT)


TABLES = [
    SQLModel.metadata.tables[name]
    for name in ("patient", "definition", "document", "mount", "mountitem")
]

IMAGE_CATEGORY = 18
# The tables every command that reads or writes documents needs (Open Dental has them all).
REQUIRED_TABLES = ("patient", "definition", "document")
IMG_TYPE_DOCUMENT = 0
IMG_TYPE_RADIOGRAPH = 1
# document.ImgType by value, as Open Dental's API names them.
IMG_TYPE_NAMES = ("Document", "Radiograph", "Photo", "File", "Attachment")
