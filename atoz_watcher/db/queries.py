"""The queries atoz-watcher runs, as keyword-only functions over a Connection."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, inspect, select, text, update

from atoz_watcher.db.models import IMAGE_CATEGORY, Definition, Document, Patient
from atoz_watcher.rules.dates import mysql_date_text, sqlite_date_text
from atoz_watcher.rules.matching import PatientRow
from atoz_watcher.rules.naming import ImageCategory
from atoz_watcher.rules.notes import DOWNLOAD_NOTE, RAW_BASE64_NOTE

_DEF = Definition.__table__  # type: ignore[attr-defined]
_DOC = Document.__table__  # type: ignore[attr-defined]
_PAT = Patient.__table__  # type: ignore[attr-defined]

# Large IN lists are split so no statement exceeds a server's placeholder limit.
_CHUNK = 500


def _chunks(values: Collection[int]) -> Iterable[list[int]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def image_categories(conn: Connection) -> list[ImageCategory]:
    """Every ``definition`` with Category=18, hidden ones included."""
    rows = conn.execute(
        select(_DEF.c.DefNum, _DEF.c.ItemOrder, _DEF.c.IsHidden, _DEF.c.ItemName).where(
            _DEF.c.Category == IMAGE_CATEGORY
        )
    )
    return [
        ImageCategory(def_num=int(r[0]), item_order=int(r[1]), is_hidden=bool(r[2]), name=r[3])
        for r in rows
    ]


_CHUNK = 2000


def _stream(conn: Connection, sql: str) -> Iterator[Sequence[Any]]:
    """Every row of a fixed query, through the DB-API cursor, a chunk of rows at a time.

    For the whole-tree reads of a rescan: SQLAlchemy's result wraps each row, which for
    200,000 documents doubles the time of the read; and rows held a chunk at a time, not all
    at once, leave the allocator no hundreds of thousands of small objects to free afterwards
    (their memory would stay the process's). On MySQL/MariaDB the cursor is PyMySQL's
    unbuffered one for the same reason. The query runs in the connection's transaction, begun
    first as executing through SQLAlchemy would begin it.
    """
    if not conn.in_transaction():
        conn.begin()  # on SQLite the engine's BEGIN IMMEDIATE, exactly as autobegin does
    if conn.dialect.name == "mysql":
        from pymysql.cursors import SSCursor  # noqa: PLC0415 - only MySQL needs PyMySQL

        cursor = conn.connection.cursor(SSCursor)
    else:
        cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(_CHUNK):
            yield from rows
    finally:
        cursor.close()


def _patient_row(r: Sequence[Any]) -> PatientRow:
    return PatientRow(
        pat_num=int(r[0]), lname=r[1] or "", fname=r[2] or "", image_folder=r[3] or ""
    )


# What ``_patient_row`` reads, in its order.
_PATIENT_COLUMNS = (_PAT.c.PatNum, _PAT.c.LName, _PAT.c.FName, _PAT.c.ImageFolder)


def _patient_rows(conn: Connection, where: object | None) -> list[PatientRow]:
    query = select(*_PATIENT_COLUMNS)
    if where is not None:
        query = query.where(where)  # type: ignore[arg-type]
    return [_patient_row(r) for r in conn.execute(query)]


def all_patients(conn: Connection) -> Iterator[PatientRow]:
    """Every patient, streamed (see ``_stream``)."""
    for r in _stream(conn, "SELECT PatNum, LName, FName, ImageFolder FROM patient"):
        yield _patient_row(r)


def patients_for_folder(conn: Connection, *, folder: str, pat_num: int | None) -> list[PatientRow]:
    """Patients a folder named ``folder`` could belong to: those whose ImageFolder is that name,
    and the one whose PatNum ends the name (a folder not yet adopted)."""
    condition = _PAT.c.ImageFolder == folder
    if pat_num is not None:
        condition = condition | (_PAT.c.PatNum == pat_num)
    return _patient_rows(conn, condition)


def patient(conn: Connection, *, pat_num: int) -> PatientRow | None:
    rows = _patient_rows(conn, _PAT.c.PatNum == pat_num)
    return rows[0] if rows else None


def adopt_folder(conn: Connection, *, pat_num: int, folder: str) -> bool:
    """Store ``folder`` in patient.ImageFolder, as Open Dental does the first time it computes
    it; only while the column is still empty. True when this call stored it."""
    result = conn.execute(
        update(_PAT)
        .where(_PAT.c.PatNum == pat_num)
        .where((_PAT.c.ImageFolder == "") | _PAT.c.ImageFolder.is_(None))
        .values(ImageFolder=folder)
    )
    return result.rowcount == 1


def all_file_names(conn: Connection) -> Iterator[tuple[int, str]]:
    """Every document's PatNum and FileName, streamed (see ``_stream``): one query for a
    whole-tree rescan."""
    for pat_num, file_name in _stream(conn, "SELECT PatNum, FileName FROM document"):
        yield int(pat_num), file_name or ""


def file_names(conn: Connection, *, pat_nums: Collection[int]) -> dict[int, set[str]]:
    """The document FileNames of the given patients, by PatNum (every patient present)."""
    known: dict[int, set[str]] = {pat_num: set() for pat_num in pat_nums}
    for chunk in _chunks(pat_nums):
        rows = conn.execute(select(_DOC.c.PatNum, _DOC.c.FileName).where(_DOC.c.PatNum.in_(chunk)))
        for pat_num, file_name in rows:
            known[int(pat_num)].add(file_name)
    return known


def taken_names(conn: Connection, *, pat_num: int, names: Collection[str]) -> set[str]:
    """Those of ``names`` that a document of the patient has as its FileName: what a stored
    file must not be called, read without reading every FileName the patient has."""
    rows = conn.execute(
        select(_DOC.c.FileName).where(_DOC.c.PatNum == pat_num, _DOC.c.FileName.in_(list(names)))
    )
    # Compared here as well: a case-insensitive collation also returns "A.jpg" for "a.jpg".
    return {file_name for (file_name,) in rows} & set(names)


def known_names(conn: Connection, *, pat_nums: Collection[int]) -> dict[int, set[str]]:
    """``file_names`` for a rescan that reads a letter folder's patients at a time: the same
    answer, read cheaply (the whole tree's FileNames, hundreds of thousands, pass through here).

    On SQLite each patient's names come joined in one row (NUL between them; a name that holds
    a NUL, which no file on disk can be called, left out), split here: a string a patient, not
    a row a file. Elsewhere the rows are fetched at once, not wrapped one by one.
    """
    known: dict[int, set[str]] = {pat_num: set() for pat_num in pat_nums}
    sqlite = conn.dialect.name == "sqlite"
    for chunk in _chunks(pat_nums):
        numbers = ", ".join(str(int(n)) for n in chunk)
        if sqlite:
            rows = conn.exec_driver_sql(
                "SELECT PatNum, group_concat(FileName, char(0)) FROM document "
                f"WHERE PatNum IN ({numbers}) AND instr(FileName, char(0)) = 0 GROUP BY PatNum"
            ).fetchall()
            for pat_num, joined in rows:
                known[int(pat_num)] = set(joined.split("\0"))
            continue
        rows = conn.exec_driver_sql(
            f"SELECT PatNum, FileName FROM document WHERE PatNum IN ({numbers})"
        ).fetchall()
        for pat_num, file_name in rows:
            known[int(pat_num)].add(file_name or "")
    return known


def doc_nums(
    conn: Connection, *, pat_nums: Collection[int], names: Collection[str]
) -> dict[tuple[int, str], int]:
    """(PatNum, FileName) -> the lowest DocNum, for those patients' documents of those names
    (the rows a batch just inserted: not every document the patients have)."""
    found: dict[tuple[int, str], int] = {}
    wanted = sorted(set(names))
    for chunk in _chunks(pat_nums):
        rows = conn.execute(
            select(_DOC.c.PatNum, _DOC.c.FileName, _DOC.c.DocNum)
            .where(_DOC.c.PatNum.in_(chunk))
            .where(_DOC.c.FileName.in_(wanted))
            .order_by(_DOC.c.DocNum.desc())
        )
        for pat_num, file_name, doc_num in rows:
            found[(int(pat_num), file_name)] = int(doc_num)
    return found


def tables_fingerprint(conn: Connection) -> tuple[object, ...]:
    """Changes whenever a row of ``document`` or ``patient`` is added or deleted, and (on
    MariaDB/MySQL, where DateTStamp is ON UPDATE CURRENT_TIMESTAMP) when a document changes.

    Lets a rescan reuse the names it read last time instead of reading every row again.
    """
    documents = conn.execute(
        select(func.count(), func.max(_DOC.c.DocNum), func.max(_DOC.c.DateTStamp))
    ).one()
    patients = conn.execute(select(func.count(), func.max(_PAT.c.PatNum))).one()
    return (*documents, *patients)


@dataclass(frozen=True, slots=True)
class DocumentFile:
    """A document stored as a file in its patient's folder, with its image settings."""

    doc_num: int
    pat_num: int
    file_name: str
    image_folder: str  # patient.ImageFolder as stored; empty when Open Dental never set it
    lname: str
    fname: str
    stamp: datetime | None  # DateTStamp: when the row (or its image settings) last changed
    crop: tuple[int, int, int, int]
    flip: bool
    degrees: float
    window: tuple[int, int]


def _document_files_query(pat_num: int | None, changed_since: datetime | None) -> Any:  # noqa: ANN401 - a Select of many columns
    query = (
        select(
            _DOC.c.DocNum,
            _DOC.c.PatNum,
            _DOC.c.FileName,
            _PAT.c.ImageFolder,
            _PAT.c.LName,
            _PAT.c.FName,
            _DOC.c.DateTStamp,
            _DOC.c.CropX,
            _DOC.c.CropY,
            _DOC.c.CropW,
            _DOC.c.CropH,
            _DOC.c.IsFlipped,
            _DOC.c.DegreesRotated,
            _DOC.c.WindowingMin,
            _DOC.c.WindowingMax,
        )
        .join(_PAT, _PAT.c.PatNum == _DOC.c.PatNum)
        .where(_DOC.c.FileName != "")
    )
    if pat_num is not None:
        query = query.where(_DOC.c.PatNum == pat_num)
    if changed_since is not None:
        query = query.where(_DOC.c.DateTStamp >= changed_since)
    return query


def count_document_files(
    conn: Connection, *, pat_num: int | None = None, changed_since: datetime | None = None
) -> int:
    """How many documents ``document_files`` would return."""
    inner = _document_files_query(pat_num, changed_since).subquery()
    return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())


def document_files(
    conn: Connection,
    *,
    after_doc_num: int,
    limit: int,
    pat_num: int | None = None,
    changed_since: datetime | None = None,
) -> list[DocumentFile]:
    """The next ``limit`` documents with a FileName, by DocNum, after ``after_doc_num`` (only
    those whose row changed since ``changed_since``, when given).

    Short keyset pages, so no long read holds a MyISAM table lock against Open Dental.
    """
    query = (
        _document_files_query(pat_num, changed_since)
        .where(_DOC.c.DocNum > after_doc_num)
        .order_by(_DOC.c.DocNum)
        .limit(limit)
    )
    return [
        DocumentFile(
            doc_num=int(row[0]),
            pat_num=int(row[1]),
            file_name=row[2],
            image_folder=row[3] or "",
            lname=row[4] or "",
            fname=row[5] or "",
            stamp=row[6],
            crop=(int(row[7] or 0), int(row[8] or 0), int(row[9] or 0), int(row[10] or 0)),
            flip=bool(row[11]),
            degrees=float(row[12] or 0),
            window=(int(row[13] or 0), int(row[14] or 0)),
        )
        for row in conn.execute(query)
    ]


# Notes that stand for a file still to come (Open Dental's API: Upload and SetByUrl).
PLACEHOLDER_PREFIXES = (DOWNLOAD_NOTE, RAW_BASE64_NOTE)


def _is_placeholder() -> Any:  # noqa: ANN401 - a SQL condition
    # autoescape: "_" is LIKE's one-character wildcard, and these prefixes are full of it.
    return ((_DOC.c.FileName == "") | _DOC.c.FileName.is_(None)) & (
        _DOC.c.Note.startswith(PLACEHOLDER_PREFIXES[0], autoescape=True)
        | _DOC.c.Note.startswith(PLACEHOLDER_PREFIXES[1], autoescape=True)
    )


def placeholder_doc_nums(conn: Connection, *, after_doc_num: int, limit: int) -> list[int]:
    """The next ``limit`` DocNums of placeholder rows (no FileName, a ``_download_:`` or
    ``_rawBase64_:`` Note), by DocNum, after ``after_doc_num``.

    Only the numbers: an Upload's Note holds the whole file, so notes are read one at a time.
    The match is the database's LIKE (case-insensitive on MariaDB); the caller checks the
    prefix exactly, as Open Dental does.
    """
    query = (
        select(_DOC.c.DocNum)
        .where(_DOC.c.DocNum > after_doc_num)
        .where(_is_placeholder())
        .order_by(_DOC.c.DocNum)
        .limit(limit)
    )
    return [int(row[0]) for row in conn.execute(query)]


def placeholder_note(conn: Connection, *, doc_num: int) -> str | None:
    """The Note of placeholder ``doc_num``; None when the row is gone or no longer one."""
    value = conn.execute(
        select(_DOC.c.Note).where(_DOC.c.DocNum == doc_num).where(_is_placeholder())
    ).scalar()
    return None if value is None else str(value)


# -- the Documents API's reads ------------------------------------------------------------------

# A Note that holds a whole file (``_rawBase64_:.jpg_<base64>``) is never read whole: the first
# characters say what it is, and the payload can be megabytes.
_RAW_NOTE_HEAD = 40


@dataclass(frozen=True, slots=True)
class DocumentEntry:
    """The columns of a ``document`` row the API shows. Dates are as the driver returns
    them (a datetime, or a string on SQLite and for MySQL's zero dates)."""

    doc_num: int
    pat_num: int
    file_name: str
    description: str
    note: str  # a ``_rawBase64_:`` Note is cut to its first characters
    date_created: object
    doc_category: int
    tooth_numbers: str
    date_tstamp: object
    img_type: int
    mount_item_num: int


_DOCUMENT_ENTRY_SQL = (
    "SELECT DocNum, PatNum, FileName, Description, "
    f"CASE WHEN substr(Note, 1, {len(RAW_BASE64_NOTE)}) = '{RAW_BASE64_NOTE}' "
    f"THEN substr(Note, 1, {_RAW_NOTE_HEAD}) ELSE Note END, "
    "DateCreated, DocCategory, ToothNumbers, DateTStamp, ImgType, MountItemNum FROM document"
)


def _document_entry(r: Sequence[Any]) -> DocumentEntry:
    return DocumentEntry(
        doc_num=int(r[0]),
        pat_num=int(r[1]),
        file_name=r[2] or "",
        description=r[3] or "",
        note=r[4] or "",
        date_created=r[5],
        doc_category=int(r[6] or 0),
        tooth_numbers=r[7] or "",
        date_tstamp=r[8],
        img_type=int(r[9] or 0),
        mount_item_num=int(r[10] or 0),
    )


def _fetch(conn: Connection, sql: str) -> Sequence[Sequence[Any]]:
    """Every row of a fixed query (no parameters), fetched at once: a page of a patient's list
    is a GET's main cost, and fetching its rows one at a time a third of it."""
    return conn.exec_driver_sql(sql).fetchall()


def document_entry(conn: Connection, *, doc_num: int) -> DocumentEntry | None:
    row = conn.execute(text(f"{_DOCUMENT_ENTRY_SQL} WHERE DocNum = :d"), {"d": doc_num}).first()
    return _document_entry(row) if row is not None else None


def has_mount_tables(conn: Connection) -> bool:
    """Open Dental always has ``mount`` and ``mountitem``; a bare database may lack them."""
    inspector = inspect(conn)
    return inspector.has_table("mount") and inspector.has_table("mountitem")


# The order of GET /documents, as one sort over documents and mounts: by DateCreated, a mount
# before a document of the same date; a document on an item of one of the patient's mounts
# takes its mount's place, right after it, in ItemOrder. Every key ends in a unique number, so
# the order is total and pages of it neither overlap nor skip. The date column sorts as stored
# (Open Dental's "no date", 0001-01-01 or MySQL's zero date, first). The page's keys are
# chosen by the inner query's LIMIT and OFFSET, then joined to their rows and categories in
# the same statement: one round trip for the page. The numbers are put in as integers
# (``list_page``), so the query runs on the DB-API cursor.
_PAGE_KEYS_WITH_MOUNTS_SQL = (
    "SELECT kind, num, mount_num, s_date, s_kind, s_num, s_member, s_order, s_doc FROM ("
    " SELECT CASE WHEN m.MountNum IS NULL THEN 1 ELSE 2 END AS kind, d.DocNum AS num,"
    " COALESCE(m.MountNum, 0) AS mount_num,"
    " CASE WHEN m.MountNum IS NULL THEN d.DateCreated ELSE m.DateCreated END AS s_date,"
    " CASE WHEN m.MountNum IS NULL THEN 1 ELSE 0 END AS s_kind,"
    " COALESCE(m.MountNum, d.DocNum) AS s_num,"
    " CASE WHEN m.MountNum IS NULL THEN 0 ELSE 1 END AS s_member,"
    " COALESCE(mi.ItemOrder, 0) AS s_order, d.DocNum AS s_doc"
    " FROM document d"
    " LEFT JOIN mountitem mi ON d.MountItemNum <> 0 AND mi.MountItemNum = d.MountItemNum"
    " LEFT JOIN mount m ON m.MountNum = mi.MountNum AND m.PatNum = {p}"
    " WHERE d.PatNum = {p}"
    " UNION ALL"
    " SELECT 0, MountNum, MountNum, DateCreated, 0, MountNum, 0, 0, 0 FROM mount"
    " WHERE PatNum = {p}"
    ") listed ORDER BY s_date, s_kind, s_num, s_member, s_order, s_doc"
    " LIMIT {limit} OFFSET {offset}"
)
_DOCUMENT_NOTE = (
    f"CASE WHEN substr(d.Note, 1, {len(RAW_BASE64_NOTE)}) = '{RAW_BASE64_NOTE}' "
    f"THEN substr(d.Note, 1, {_RAW_NOTE_HEAD}) ELSE d.Note END"
)


def _page_sql(*, with_mounts: bool, mysql: bool) -> str:
    """The page's query (see above), its columns as ``ListedRow``'s, none NULL, the dates as
    the API's text made by the database (``rules.dates``: PyMySQL's reading of a DATETIME was
    a fifth of a GET on MySQL, and parsing SQLite's text a sixth of one on SQLite)."""

    def date(column: str) -> str:
        text = mysql_date_text(column) if mysql else sqlite_date_text(column)
        return f"COALESCE({text}, '')"

    def number(expression: str) -> str:  # MySQL's COALESCE of a TINYINT and 0 is a DECIMAL
        return f"CAST({expression} AS SIGNED)" if mysql else expression

    if not with_mounts:
        return (
            "SELECT 1, d.DocNum, 0, COALESCE(d.FileName, ''), COALESCE(d.Description, ''),"
            f" COALESCE({_DOCUMENT_NOTE}, ''), {date('d.DateCreated')},"
            f" {number('COALESCE(d.DocCategory, 0)')}, COALESCE(c.ItemName, ''),"
            f" COALESCE(d.ToothNumbers, ''), {date('d.DateTStamp')},"
            f" {number('COALESCE(d.ImgType, 0)')}"
            " FROM (SELECT DocNum FROM document WHERE PatNum = {p}"
            " ORDER BY DateCreated, DocNum LIMIT {limit} OFFSET {offset}"
            ") k JOIN document d ON d.DocNum = k.DocNum"
            " LEFT JOIN definition c ON c.DefNum = d.DocCategory"
            f" AND c.Category = {IMAGE_CATEGORY}"
            " ORDER BY d.DateCreated, d.DocNum"
        )
    # A mount's columns come from ``mt``, a document's from ``d``: the other is all NULL, so
    # COALESCE picks the line's own.
    return (
        "SELECT k.kind, k.num, k.mount_num, COALESCE(d.FileName, ''),"
        " COALESCE(d.Description, mt.Description, ''),"
        f" COALESCE(CASE WHEN k.kind = 0 THEN mt.Note ELSE {_DOCUMENT_NOTE} END, ''),"
        f" {date('COALESCE(d.DateCreated, mt.DateCreated)')},"
        f" {number('COALESCE(d.DocCategory, mt.DocCategory, 0)')}, COALESCE(c.ItemName, ''),"
        f" COALESCE(d.ToothNumbers, ''), {date('d.DateTStamp')},"
        f" {number('COALESCE(d.ImgType, 0)')}"
        f" FROM ({_PAGE_KEYS_WITH_MOUNTS_SQL}) k"
        " LEFT JOIN document d ON k.kind <> 0 AND d.DocNum = k.num"
        " LEFT JOIN mount mt ON k.kind = 0 AND mt.MountNum = k.num"
        " LEFT JOIN definition c ON c.DefNum = COALESCE(d.DocCategory, mt.DocCategory)"
        f" AND c.Category = {IMAGE_CATEGORY}"
        " ORDER BY k.s_date, k.s_kind, k.s_num, k.s_member, k.s_order, k.s_doc"
    )


_PAGE_SQL = {
    (with_mounts, mysql): _page_sql(with_mounts=with_mounts, mysql=mysql)
    for with_mounts in (False, True)
    for mysql in (False, True)
}


class Listed(IntEnum):
    """What a line of a patient's list is."""

    MOUNT = 0
    DOCUMENT = 1  # a document on its own
    ON_MOUNT = 2  # a document on an item of one of the patient's mounts, listed under it


class ListedRow(NamedTuple):
    """A line of a patient's list with the columns the API shows, as ``list_page`` reads them
    (a mount's FileName, ToothNumbers and DateTStamp are "", its ImgType 0, its Note whole).
    A tuple straight from the row: a page is a GET's main cost."""

    kind: int  # a ``Listed``
    num: int  # the DocNum, or the MountNum of a mount
    mount_num: int  # the mount a document is listed under; 0 for one on its own
    file_name: str
    description: str
    note: str  # a document's ``_rawBase64_:`` Note is cut to its first characters
    date_created: str  # as the API shows it (``rules.dates.format_date``)
    doc_category: int
    category: str  # the image category's name; "" when DocCategory is none of them
    tooth_numbers: str
    date_tstamp: str  # as DateCreated
    img_type: int


def list_page(
    conn: Connection, *, pat_num: int, limit: int, offset: int, with_mounts: bool
) -> list[ListedRow]:
    """One page of a patient's documents and mounts in the list's order (see above), each with
    its columns and its category's name, in one query: only the page's rows are read, by the
    database's LIMIT and OFFSET."""
    mysql = conn.dialect.name == "mysql"
    sql = _PAGE_SQL[with_mounts, mysql].format(p=int(pat_num), limit=int(limit), offset=int(offset))
    return [ListedRow._make(r) for r in _fetch(conn, sql)]


def patient_and_status(conn: Connection, *, pat_num: int) -> tuple[PatientRow, int] | None:
    """The patient and its PatStatus (4 is Deleted) in one query; None when there is no such
    patient. A new document's check, on every Upload: one round trip fewer than two."""
    row = conn.execute(
        select(*_PATIENT_COLUMNS, _PAT.c.PatStatus).where(_PAT.c.PatNum == pat_num)
    ).first()
    if row is None:
        return None
    return _patient_row(row), int(row[-1] or 0)


def pat_status(conn: Connection, *, pat_num: int) -> int | None:
    """patient.PatStatus (4 is Deleted); None when there is no such patient."""
    value = conn.execute(select(_PAT.c.PatStatus).where(_PAT.c.PatNum == pat_num)).first()
    return None if value is None else int(value[0] or 0)


# Open Dental's "no birth date" is 0001-01-01; it shows no date before 1880 anywhere.
_FIRST_BIRTH_YEAR = 1880


@dataclass(frozen=True, slots=True)
class PatientCard:
    """Who a patient is, as a person reads it: for a printed cover sheet.

    ``preferred`` and ``middle_initial`` are "" and ``birth_date`` None when the column is
    empty, or when the table lacks it (a database atoz-watcher created has none of them).
    """

    pat_num: int
    lname: str
    fname: str
    preferred: str
    middle_initial: str
    birth_date: date | None
    pat_status: int


# Columns a bare patient table may lack; read only where present.
_CARD_OPTIONAL = ("Preferred", "MiddleI", "Birthdate")


def birth_date(value: object) -> date | None:
    """A Birthdate as stored (a date, a datetime, text on SQLite, MySQL's zero date as text)
    -> the date, or None for Open Dental's no-date."""
    if isinstance(value, datetime):
        value = value.date()
    elif isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return None
    if not isinstance(value, date) or value.year < _FIRST_BIRTH_YEAR:
        return None
    return value


def patient_card(conn: Connection, *, pat_num: int) -> PatientCard | None:
    """The patient's name, preferred name, middle initial, birth date and PatStatus; None
    when there is no such patient."""
    present = {column["name"] for column in inspect(conn).get_columns("patient")}
    # The column names are ours (a fixed list), never the caller's.
    columns = ["PatNum", "LName", "FName", "PatStatus"]
    columns += [name for name in _CARD_OPTIONAL if name in present]
    row = conn.execute(
        text(f"SELECT {', '.join(columns)} FROM patient WHERE PatNum = :p"), {"p": pat_num}
    ).first()
    if row is None:
        return None
    values = dict(zip(columns, row, strict=True))
    return PatientCard(
        pat_num=int(values["PatNum"]),
        lname=values["LName"] or "",
        fname=values["FName"] or "",
        preferred=(values.get("Preferred") or "").strip(),
        middle_initial=(values.get("MiddleI") or "").strip(),
        birth_date=birth_date(values.get("Birthdate")),
        pat_status=int(values["PatStatus"] or 0),
    )


def image_category_by(conn: Connection, *, key: int | str) -> list[ImageCategory]:
    """The image categories (Category=18, hidden ones included) ``key`` names: the one whose
    DefNum it is, or those whose ItemName it is, case-insensitively (and ignoring spaces around
    it), in DefNum order. The caller decides what none, a hidden one or several mean."""
    categories = sorted(image_categories(conn), key=lambda c: c.def_num)
    if isinstance(key, int):
        return [c for c in categories if c.def_num == key]
    wanted = key.strip().casefold()
    return [c for c in categories if (c.name or "").strip().casefold() == wanted]


def mount_of_item(conn: Connection, *, mount_item_num: int) -> int | None:
    """The MountNum a mount item belongs to; None when the item is gone."""
    value = conn.execute(
        text("SELECT MountNum FROM mountitem WHERE MountItemNum = :m"), {"m": mount_item_num}
    ).scalar()
    return int(value) if value is not None else None


# -- mount composites -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MountLayout:
    """A mount's canvas: its size and colours (ARGB as Open Dental stores them, signed)."""

    mount_num: int
    width: int
    height: int
    color_back: int
    color_fore: int  # text of text items
    color_text_back: int  # behind text items


@dataclass(frozen=True, slots=True)
class MountItemLayout:
    mount_item_num: int
    item_order: int
    x: int
    y: int
    width: int
    height: int
    text_showing: str
    font_size: float


@dataclass(frozen=True, slots=True)
class MountDocument:
    """The document shown in a mount item, with where its bytes are and its image settings."""

    doc_num: int
    mount_item_num: int
    pat_num: int
    file_name: str
    image_folder: str  # patient.ImageFolder as stored; empty when Open Dental never set it
    lname: str
    fname: str
    crop: tuple[int, int, int, int]
    flip: bool
    degrees: float
    window: tuple[int, int]


def mount_layout(conn: Connection, *, mount_num: int) -> MountLayout | None:
    """The mount's size and colours; None when there is no such mount (or no mount table)."""
    if not has_mount_tables(conn):
        return None
    row = conn.execute(
        text(
            "SELECT MountNum, Width, Height, ColorBack, ColorFore, ColorTextBack FROM mount "
            "WHERE MountNum = :m"
        ),
        {"m": mount_num},
    ).first()
    if row is None:
        return None
    return MountLayout(
        mount_num=int(row[0]),
        width=int(row[1] or 0),
        height=int(row[2] or 0),
        color_back=int(row[3] or 0),
        color_fore=int(row[4] or 0),
        color_text_back=int(row[5] or 0),
    )


def mount_item_layouts(conn: Connection, *, mount_num: int) -> list[MountItemLayout]:
    """The mount's shown items (ItemOrder not -1), in ItemOrder, then MountItemNum."""
    rows = conn.execute(
        text(
            "SELECT MountItemNum, ItemOrder, Xpos, Ypos, Width, Height, TextShowing, FontSize "
            "FROM mountitem WHERE MountNum = :m AND ItemOrder <> -1 "
            "ORDER BY ItemOrder, MountItemNum"
        ),
        {"m": mount_num},
    )
    return [
        MountItemLayout(
            mount_item_num=int(r[0]),
            item_order=int(r[1] or 0),
            x=int(r[2] or 0),
            y=int(r[3] or 0),
            width=int(r[4] or 0),
            height=int(r[5] or 0),
            text_showing=r[6] or "",
            font_size=float(r[7] or 0),
        )
        for r in rows
    ]


def mount_documents(conn: Connection, *, mount_num: int) -> dict[int, MountDocument]:
    """MountItemNum -> the document shown in it: the newest (highest DocNum) of those whose
    MountItemNum is the item. No RawBase64 here (see ``raw_base64``)."""
    rows = conn.execute(
        text(
            "SELECT document.DocNum, document.MountItemNum, document.PatNum, document.FileName, "
            "patient.ImageFolder, patient.LName, patient.FName, document.CropX, document.CropY, "
            "document.CropW, document.CropH, document.IsFlipped, document.DegreesRotated, "
            "document.WindowingMin, document.WindowingMax "
            "FROM mountitem JOIN document ON document.MountItemNum = mountitem.MountItemNum "
            "LEFT JOIN patient ON patient.PatNum = document.PatNum "
            "WHERE mountitem.MountNum = :m ORDER BY document.DocNum"
        ),
        {"m": mount_num},
    )
    found: dict[int, MountDocument] = {}
    for r in rows:  # in DocNum order: the newest document of an item is written last
        found[int(r[1])] = MountDocument(
            doc_num=int(r[0]),
            mount_item_num=int(r[1]),
            pat_num=int(r[2] or 0),
            file_name=r[3] or "",
            image_folder=r[4] or "",
            lname=r[5] or "",
            fname=r[6] or "",
            crop=(int(r[7] or 0), int(r[8] or 0), int(r[9] or 0), int(r[10] or 0)),
            flip=bool(r[11]),
            degrees=float(r[12] or 0),
            window=(int(r[13] or 0), int(r[14] or 0)),
        )
    return found


def raw_base64(conn: Connection, *, doc_num: int) -> str:
    """document.RawBase64 of one document ('' when it is gone): read one row at a time, as the
    column can hold megabytes."""
    value = conn.execute(
        text("SELECT RawBase64 FROM document WHERE DocNum = :d"), {"d": doc_num}
    ).scalar()
    return "" if value is None else str(value)


# -- the SFTP endpoints' reads ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentSource:
    """What it takes to read one document's bytes: its FileName, its patient's folder and, for
    InDatabase, its RawBase64."""

    doc_num: int
    pat_num: int
    file_name: str
    image_folder: str  # patient.ImageFolder as stored ("" when never set, or no patient)
    lname: str
    fname: str
    raw_base64: str


_DOCUMENT_SOURCE_SQL = (
    "SELECT document.DocNum, document.PatNum, document.FileName, patient.ImageFolder, "
    "patient.LName, patient.FName, {raw} FROM document "
    "LEFT JOIN patient ON patient.PatNum = document.PatNum"
)


def _document_source(r: Sequence[Any]) -> DocumentSource:
    return DocumentSource(
        doc_num=int(r[0]),
        pat_num=int(r[1]),
        file_name=r[2] or "",
        image_folder=r[3] or "",
        lname=r[4] or "",
        fname=r[5] or "",
        raw_base64=r[6] or "",
    )


def document_source(conn: Connection, *, doc_num: int, with_raw: bool) -> DocumentSource | None:
    """One document's source; RawBase64 (possibly megabytes) only when ``with_raw``."""
    sql = _DOCUMENT_SOURCE_SQL.format(raw="document.RawBase64" if with_raw else "''")
    row = conn.execute(text(f"{sql} WHERE document.DocNum = :d"), {"d": doc_num}).first()
    return _document_source(row) if row is not None else None


def count_documents(conn: Connection, *, pat_num: int) -> int:
    """How many ``document`` rows the patient has (placeholders included)."""
    return int(conn.execute(select(func.count()).where(_DOC.c.PatNum == pat_num)).scalar_one())


def mount_exists(conn: Connection, *, mount_num: int) -> bool:
    value = conn.execute(
        text("SELECT MountNum FROM mount WHERE MountNum = :m"), {"m": mount_num}
    ).scalar()
    return value is not None


def mount_doc_nums(conn: Connection, *, mount_num: int) -> list[int]:
    """The DocNums of the documents with a file on the mount's items, in ItemOrder."""
    rows = conn.execute(
        text(
            "SELECT document.DocNum FROM document "
            "JOIN mountitem ON mountitem.MountItemNum = document.MountItemNum "
            "WHERE mountitem.MountNum = :m AND document.FileName <> '' "
            "ORDER BY mountitem.ItemOrder, document.DocNum"
        ),
        {"m": mount_num},
    )
    return [int(r[0]) for r in rows]


# -- the scanner inbox --------------------------------------------------------------------------


def patients_by_chart(conn: Connection, *, chart_number: str) -> list[int] | None:
    """The PatNums whose patient.ChartNumber is ``chart_number``; None when the table has no
    ChartNumber column (Open Dental's has; a bare test database may not)."""
    columns = {column["name"].lower() for column in inspect(conn).get_columns("patient")}
    if "chartnumber" not in columns:
        return None
    rows = conn.execute(
        text("SELECT PatNum FROM patient WHERE ChartNumber = :c ORDER BY PatNum"),
        {"c": chart_number},
    )
    return [int(row[0]) for row in rows]


def max_doc_num(conn: Connection, *, pat_num: int) -> int:
    """The highest DocNum of ``pat_num``'s documents (0 when none): rows made later are above."""
    value = conn.execute(select(func.max(_DOC.c.DocNum)).where(_DOC.c.PatNum == pat_num)).scalar()
    return int(value or 0)


@dataclass(frozen=True, slots=True)
class RecentDocument:
    """A patient's document row made after a known DocNum, as the inbox's recovery sees it."""

    doc_num: int
    file_name: str
    description: str
    blank_note: bool  # Note empty: no placeholder (``_download_:``, ``_rawBase64_:``)


def documents_after(conn: Connection, *, pat_num: int, after_doc_num: int) -> list[RecentDocument]:
    """``pat_num``'s documents with a DocNum above ``after_doc_num``, by DocNum."""
    rows = conn.execute(
        select(
            _DOC.c.DocNum,
            _DOC.c.FileName,
            _DOC.c.Description,
            (_DOC.c.Note.is_(None) | (_DOC.c.Note == "")).label("blank"),
        )
        .where(_DOC.c.PatNum == pat_num)
        .where(_DOC.c.DocNum > after_doc_num)
        .order_by(_DOC.c.DocNum)
    )
    return [
        RecentDocument(
            doc_num=int(r[0]), file_name=r[1] or "", description=r[2] or "", blank_note=bool(r[3])
        )
        for r in rows
    ]
