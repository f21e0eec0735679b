"""The front-desk page's reads: the latest documents, one patient's, and finding a patient.

Each reads only what the page shows, a page at a time (LIMIT), through the primary key or an
index Open Dental has: ``document`` newest first by DocNum, a patient's documents by PatNum,
patients by PatNum, by an ``LName`` prefix (``indexLName``/``indexLFName``), by ``ChartNumber``
and by ``Birthdate`` (``BirthdateStatus``). Never a note, a RawBase64 or a whole table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import (
    Connection,
    Select,
    String,
    inspect,
    literal,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from atoz_watcher.db.models import IMAGE_CATEGORY, Definition, Document, Patient
from atoz_watcher.db.queries import birth_date

_DEF = Definition.__table__  # type: ignore[attr-defined]
_DOC = Document.__table__  # type: ignore[attr-defined]
_PAT = Patient.__table__  # type: ignore[attr-defined]

# Open Dental's "no date"; what a date SQLAlchemy or the driver cannot read becomes.
NO_DATE: Final = datetime(1, 1, 1)


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """A document as a line of the page shows it."""

    doc_num: int
    pat_num: int
    patient: str  # "LName, FName" ("" when the patient row is gone)
    category_num: int
    category: str  # definition.ItemName ("" when the definition is gone)
    file_name: str
    description: str
    created: datetime  # document.DateCreated (NO_DATE when unset or unreadable)
    img_type: int
    folder: str  # patient.ImageFolder: the file is root/folder[0]/folder/file_name


@dataclass(frozen=True, slots=True)
class PatientHit:
    pat_num: int
    name: str  # "LName, FName"
    chart_number: str  # "" when empty or when the table has no ChartNumber
    birth_date: date | None  # None when unset or when the table has no Birthdate
    status: int  # PatStatus (4 = deleted: shown, never offered for assigning)


def _as_datetime(value: object) -> datetime:
    """DateCreated as the driver returns it (a datetime; text on SQLite and for MySQL's zero
    date) -> a datetime; NO_DATE when it is none."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return NO_DATE
    return NO_DATE


def _name(lname: object, fname: object) -> str:
    if lname is None and fname is None:
        return ""
    return f"{lname or ''}, {fname or ''}"


def _lines_query() -> Select[Any]:
    # The date read as stored (no SQLAlchemy parsing): a row another program wrote with a date
    # SQLite's DateTime cannot parse must not fail the whole page.
    return (
        select(
            _DOC.c.DocNum,
            _DOC.c.PatNum,
            _PAT.c.LName,
            _PAT.c.FName,
            _DOC.c.DocCategory,
            _DEF.c.ItemName,
            _DOC.c.FileName,
            _DOC.c.Description,
            type_coerce(_DOC.c.DateCreated, String),
            _DOC.c.ImgType,
            _PAT.c.ImageFolder,
        )
        .select_from(_DOC)
        .outerjoin(_PAT, _PAT.c.PatNum == _DOC.c.PatNum)
        .outerjoin(
            _DEF, (_DEF.c.DefNum == _DOC.c.DocCategory) & (_DEF.c.Category == IMAGE_CATEGORY)
        )
    )


def _lines(conn: Connection, query: Select[Any]) -> list[DocumentLine]:
    return [
        DocumentLine(
            doc_num=int(r[0]),
            pat_num=int(r[1] or 0),
            patient=_name(r[2], r[3]),
            category_num=int(r[4] or 0),
            category=r[5] or "",
            file_name=r[6] or "",
            description=r[7] or "",
            created=_as_datetime(r[8]),
            img_type=int(r[9] or 0),
            folder=r[10] or "",
        )
        for r in conn.execute(query)
    ]


def latest_documents(
    conn: Connection, *, limit: int, before_doc_num: int | None = None
) -> list[DocumentLine]:
    """The newest ``limit`` documents (DocNum DESC), below ``before_doc_num`` when given.

    Mounts' items (MountItemNum != 0) are listed like any document.
    """
    query = _lines_query()
    if before_doc_num is not None:
        query = query.where(_DOC.c.DocNum < before_doc_num)
    return _lines(conn, query.order_by(_DOC.c.DocNum.desc()).limit(limit))


def documents_since(conn: Connection, *, after_doc_num: int, limit: int) -> list[DocumentLine]:
    """The documents above ``after_doc_num``, newest first, at most ``limit``."""
    query = _lines_query().where(_DOC.c.DocNum > after_doc_num)
    return _lines(conn, query.order_by(_DOC.c.DocNum.desc()).limit(limit))


def document_line(conn: Connection, *, doc_num: int) -> DocumentLine | None:
    lines = _lines(conn, _lines_query().where(_DOC.c.DocNum == doc_num))
    return lines[0] if lines else None


def patient_documents(
    conn: Connection, *, pat_num: int, limit: int, offset: int = 0
) -> list[DocumentLine]:
    """``pat_num``'s documents by their category's ItemOrder (documents whose category is gone
    last), then newest first; a page of ``limit`` from ``offset``."""
    query = (
        _lines_query()
        .where(_DOC.c.PatNum == pat_num)
        .order_by(
            _DEF.c.ItemOrder.is_(None),
            _DEF.c.ItemOrder,
            _DOC.c.DocCategory,
            _DOC.c.DocNum.desc(),
        )
        .limit(limit)
        .offset(offset)
    )
    return _lines(conn, query)


# -- finding a patient ----------------------------------------------------------------------------

_NUMBER = re.compile(r"#?\s*(\d{1,18})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
# A name: letters and what names hold (spaces, hyphens, apostrophes, dots, a comma); no digit.
_NAME = re.compile(r"[^\W\d][^\d]*")


@dataclass(frozen=True, slots=True)
class _Search:
    """What a query asks for: a PatNum, a birth date, a name, or a chart number."""

    pat_num: int | None = None
    birth_date: date | None = None
    lname: str = ""
    fname: str = ""
    whole: str = ""  # "Van Buren": also an LName prefix as typed, spaces and all
    chart_number: str = ""


def _date(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _parse(query: str) -> _Search:
    """What the words of ``query`` ask for (see ``find_patients``)."""
    words = " ".join(query.split())
    if number := _NUMBER.fullmatch(words):
        return _Search(pat_num=int(number.group(1)), chart_number=number.group(1))
    if (iso := _ISO_DATE.fullmatch(words)) and (day := _date(*iso.groups())):
        return _Search(birth_date=day)
    if (us := _US_DATE.fullmatch(words)) and (day := _date(us[3], us[1], us[2])):
        return _Search(birth_date=day)
    if _NAME.fullmatch(words):
        if "," in words:
            lname, _, fname = words.partition(",")
            return _Search(lname=lname.strip(), fname=fname.strip())
        lname, _, fname = words.partition(" ")
        return _Search(lname=lname, fname=fname, whole=words if fname else "")
    return _Search(chart_number=words)


def _patient_columns(conn: Connection) -> tuple[bool, bool]:
    """Whether ``patient`` has ChartNumber and Birthdate (Open Dental's has; ours may not)."""
    present = {column["name"].lower() for column in inspect(conn).get_columns("patient")}
    return "chartnumber" in present, "birthdate" in present


def _hits_query(*, chart: bool, birth: bool) -> Select[Any]:
    # The optional columns are named by us (fixed text), never by the caller.
    chart_column = literal_column("patient.ChartNumber", String) if chart else literal("")
    birth_column = literal_column("patient.Birthdate", String) if birth else literal(None, String)
    return select(
        _PAT.c.PatNum,
        _PAT.c.LName,
        _PAT.c.FName,
        chart_column,
        birth_column,
        _PAT.c.PatStatus,
    ).select_from(_PAT)


def _hits(conn: Connection, query: Select[Any]) -> list[PatientHit]:
    return [
        PatientHit(
            pat_num=int(r[0]),
            name=_name(r[1], r[2]),
            chart_number=r[3] or "",
            birth_date=birth_date(r[4]),
            status=int(r[5] or 0),
        )
        for r in conn.execute(query)
    ]


def _by_name(search: _Search) -> ColumnElement[bool]:
    # LIKE 'prefix%' with % and _ in the words escaped: a range of the LName index.
    condition: ColumnElement[bool] = _PAT.c.LName.startswith(search.lname, autoescape=True)
    if search.fname:
        condition = condition & _PAT.c.FName.startswith(search.fname, autoescape=True)
    if search.whole:
        condition = condition | _PAT.c.LName.startswith(search.whole, autoescape=True)
    return condition


def find_patients(conn: Connection, query: str, *, limit: int = 20) -> list[PatientHit]:
    """The patients ``query`` names, at most ``limit``.

    - ``18`` or ``#18``: PatNum 18, then the patients whose ChartNumber is "18";
    - ``Smith`` / ``smi``: LName starting so (case as the database compares it);
    - ``Smith, Jo`` / ``Smith Jo``: LName and FName starting so (``Van Buren`` also finds the
      LName "Van Buren");
    - ``1980-04-02`` or ``04/02/1980``: born that day;
    - anything else: ChartNumber exactly.

    Each through the primary key or an index; ChartNumber and Birthdate only where the table
    has them (none found otherwise). Names in LName, FName, PatNum order.
    """
    search = _parse(query)
    if limit <= 0 or not query.strip():
        return []
    chart, birth = _patient_columns(conn)
    base = _hits_query(chart=chart, birth=birth)
    found: list[PatientHit] = []
    if search.pat_num is not None:
        found += _hits(conn, base.where(_PAT.c.PatNum == search.pat_num))
    if search.chart_number and chart:
        by_chart = (
            base.where(text("patient.ChartNumber = :chart").bindparams(chart=search.chart_number))
            .where(_PAT.c.PatNum != (search.pat_num or 0))
            .order_by(_PAT.c.PatNum)
            .limit(limit)
        )
        found += _hits(conn, by_chart)
    if search.birth_date is not None and birth:
        by_birth = (
            base.where(
                text("patient.Birthdate = :born").bindparams(born=search.birth_date.isoformat())
            )
            .order_by(_PAT.c.LName, _PAT.c.FName, _PAT.c.PatNum)
            .limit(limit)
        )
        found += _hits(conn, by_birth)
    if search.lname:
        by_name = (
            base.where(_by_name(search))
            .order_by(_PAT.c.LName, _PAT.c.FName, _PAT.c.PatNum)
            .limit(limit)
        )
        found += _hits(conn, by_name)
    return found[:limit]
