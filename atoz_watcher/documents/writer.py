"""Creating documents from bytes (API Upload, materialised placeholders), exactly once.

The file and its row are made under the registration lock, the same lock the folder
registrar takes: the daemon, seeing the new file appear in a patient folder, waits for the
lock, then finds the FileName already in the table and leaves the file alone.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from atoz_watcher.db import queries
from atoz_watcher.db.lock import locked_connection
from atoz_watcher.db.rows import blank_document
from atoz_watcher.db.shape import TableShape
from atoz_watcher.errors import AtozError, DatabaseUnavailableError, NoImageCategoryError
from atoz_watcher.rules.layout import folder_name
from atoz_watcher.rules.matching import PatientRow
from atoz_watcher.rules.naming import first_visible
from atoz_watcher.storage import Content, Storage, Stored

log = structlog.get_logger("atoz_watcher.documents")


class PatientNotFoundError(AtozError):
    def __init__(self, pat_num: int) -> None:
        self.pat_num = pat_num
        super().__init__("Patient not found")


# patient.PatStatus of a deleted patient (Open Dental's PatientStatus.Deleted).
PAT_STATUS_DELETED = 4


class PatientDeletedError(AtozError):
    """Open Dental's deleted patients take no new documents."""

    def __init__(self, pat_num: int) -> None:
        self.pat_num = pat_num
        super().__init__("Patient is deleted; documents cannot be added to a deleted patient")


def check_not_deleted(conn: Connection, pat_num: int) -> None:
    """``PatientNotFoundError`` for no such patient, ``PatientDeletedError`` for a deleted one."""
    status = queries.pat_status(conn, pat_num=pat_num)
    if status is None:
        raise PatientNotFoundError(pat_num)
    if status == PAT_STATUS_DELETED:
        raise PatientDeletedError(pat_num)


class CategoryError(AtozError):
    """DocCategory is not an image category (a ``definition`` with Category=18)."""

    def __init__(self, def_num: int) -> None:
        self.def_num = def_num
        super().__init__(f"DocCategory {def_num} is not an image category")


@dataclass(frozen=True, slots=True)
class NewDocument:
    """What a client asked for; the category None means the first visible image category."""

    pat_num: int
    extension: str  # ".jpg": a dot and 1-10 letters or digits, checked by the caller
    category: int | None = None
    img_type: int = 0
    description: str | None = None  # None: the file's name, as Open Dental's import does
    date_created: datetime | None = None  # None: now
    tooth_numbers: str = ""  # normalised by the caller (teeth.normalise)
    # The file's own name (UploadSftp keeps the remote one, as Open Dental does); None: Open
    # Dental's generated name (letters of the patient's name, the DocNum, the extension).
    file_name: str | None = None


@dataclass(frozen=True, slots=True)
class Created:
    doc_num: int
    pat_num: int
    stored: Stored | None  # None for a placeholder (SetByUrl) until it is materialised


def generated_name(patient: PatientRow, doc_num: int, extension: str) -> str:
    """Open Dental's name for a file it writes: the letters of LName+FName, the DocNum and the
    extension (``SmithJohn411.png``)."""
    return f"{folder_name(patient.lname, patient.fname, doc_num)}{extension}"


class DocumentWriter:
    """Makes ``document`` rows whose file is stored at once (or later, for placeholders)."""

    def __init__(self, engine: Engine, storage: Storage, *, lock_timeout_s: int) -> None:
        self._engine = engine
        self._storage = storage
        self._lock_timeout_s = lock_timeout_s
        # ``document`` as the live database has it, reflected once: a Table made per insert
        # compiles a new INSERT each time (a Table's cache key is its identity), and the
        # engine's compiled-statement cache kept about 750 of them, ~120 KB each.
        self._shape: TableShape | None = None

    def create(self, new: NewDocument, data: Content, *, now: datetime | None = None) -> Created:
        """A row and its stored file (bytes, or a finished spool that is moved into place); on
        any failure neither is left behind."""
        now = now or datetime.now().replace(microsecond=0)
        with self._locked() as conn:
            patient, category = self._check(conn, new)
            doc_num = self._insert(conn, new, category=category, now=now, note="")
            stored: Stored | None = None
            try:
                folder = self._folder(conn, patient)
                stored = self._store(
                    conn,
                    patient,
                    folder,
                    name=new.file_name or generated_name(patient, doc_num, new.extension),
                    data=data,
                )
                fields: dict[str, object] = {
                    "FileName": stored.file_name,
                    "RawBase64": stored.raw_base64,
                }
                if new.description is None:
                    fields["Description"] = stored.file_name
                self._update(conn, doc_num, fields)
                conn.commit()
            except BaseException:
                self._undo(conn, doc_num, stored)
                raise
        log.info(
            "document.created",
            patnum=new.pat_num,
            docnum=doc_num,
            category=category,
            path=str(stored.path) if stored.path else None,
            storage=self._storage.kind,
        )
        return Created(doc_num=doc_num, pat_num=new.pat_num, stored=stored)

    def create_placeholder(
        self, new: NewDocument, note: str, *, now: datetime | None = None
    ) -> Created:
        """A row whose file comes later (``Note`` = ``_download_:<url>``), as Open Dental's
        SetByUrl makes it."""
        now = now or datetime.now().replace(microsecond=0)
        with self._locked() as conn:
            _, category = self._check(conn, new)
            doc_num = self._insert(conn, new, category=category, now=now, note=note)
            conn.commit()
        log.info("document.placeholder", patnum=new.pat_num, docnum=doc_num, category=category)
        return Created(doc_num=doc_num, pat_num=new.pat_num, stored=None)

    def materialise(
        self, doc_num: int, *, note: str, extension: str, data: bytes
    ) -> Created | None:
        """Store the file of placeholder ``doc_num`` and clear its Note, keeping its DocNum.

        None when the row is gone or its Note is no longer ``note`` (someone else, Open Dental
        or another atoz-watcher, materialised it first): nothing is stored then.
        """
        with self._locked() as conn:
            row = conn.execute(
                text("SELECT PatNum, Note, FileName, Description FROM document WHERE DocNum = :d"),
                {"d": doc_num},
            ).first()
            if row is None or row[1] != note or row[2]:
                conn.rollback()
                return None
            patient = queries.patient(conn, pat_num=int(row[0]))
            if patient is None:
                conn.rollback()
                raise PatientNotFoundError(int(row[0]))
            stored: Stored | None = None
            try:
                folder = self._folder(conn, patient)
                stored = self._store(
                    conn,
                    patient,
                    folder,
                    name=generated_name(patient, doc_num, extension),
                    data=data,
                )
                fields: dict[str, object] = {
                    "FileName": stored.file_name,
                    "RawBase64": stored.raw_base64,
                    "Note": "",
                    # Changed: Open Dental's freshness rule then rebuilds any old thumbnail.
                    "DateTStamp": datetime.now().replace(microsecond=0),
                }
                if not row[3]:
                    fields["Description"] = stored.file_name
                self._update(conn, doc_num, fields)
                conn.commit()
            except BaseException:
                conn.rollback()
                if stored is not None:
                    self._storage.discard(stored)
                raise
        log.info(
            "document.materialised",
            patnum=patient.pat_num,
            docnum=doc_num,
            path=str(stored.path) if stored.path else None,
        )
        return Created(doc_num=doc_num, pat_num=patient.pat_num, stored=stored)

    # -- steps -----------------------------------------------------------------------------------

    def _locked(self) -> AbstractContextManager[Connection]:
        return locked_connection(self._engine, timeout_s=self._lock_timeout_s)

    @staticmethod
    def _check(conn: Connection, new: NewDocument) -> tuple[PatientRow, int]:
        patient = queries.patient(conn, pat_num=new.pat_num)
        if patient is None:
            raise PatientNotFoundError(new.pat_num)
        check_not_deleted(conn, new.pat_num)
        categories = queries.image_categories(conn)
        if new.category is None:
            default = first_visible(categories)
            if default is None:
                raise NoImageCategoryError
            return patient, default.def_num
        if not any(c.def_num == new.category for c in categories):
            raise CategoryError(new.category)
        return patient, new.category

    def _table(self, conn: Connection) -> TableShape:
        # Called under the registration lock, so two requests never reflect it at once.
        if self._shape is None:
            self._shape = TableShape.reflect(conn, "document")
        return self._shape

    def _insert(
        self, conn: Connection, new: NewDocument, *, category: int, now: datetime, note: str
    ) -> int:
        shape = self._table(conn)
        row = blank_document(
            PatNum=new.pat_num,
            Description=new.description or "",
            DocCategory=category,
            ImgType=new.img_type,
            DateCreated=new.date_created or now,
            DateTStamp=now,
            ToothNumbers=new.tooth_numbers,
            Note=note,
        )
        key = conn.execute(shape.table.insert(), [shape.complete(row)]).inserted_primary_key
        if key is None:
            raise DatabaseUnavailableError("the database returned no DocNum for the new row")
        return int(key[0])

    @staticmethod
    def _update(conn: Connection, doc_num: int, fields: dict[str, object]) -> None:
        assignments = ", ".join(f"{column} = :{column}" for column in fields)
        conn.execute(
            text(f"UPDATE document SET {assignments} WHERE DocNum = :doc_num"),
            {**fields, "doc_num": doc_num},
        )

    @staticmethod
    def _folder(conn: Connection, patient: PatientRow) -> str:
        """The patient's ImageFolder, computed and stored the first time, as Open Dental does."""
        if patient.image_folder:
            return patient.image_folder
        name = folder_name(patient.lname, patient.fname, patient.pat_num)
        if not queries.adopt_folder(conn, pat_num=patient.pat_num, folder=name):
            fresh = queries.patient(conn, pat_num=patient.pat_num)
            if fresh is not None and fresh.image_folder:
                return fresh.image_folder
        return name

    def _store(
        self,
        conn: Connection,
        patient: PatientRow,
        folder: str,
        *,
        name: str,
        data: Content,
    ) -> Stored:
        """``data`` under ``name``, x-prefixed while a file or a row of the patient has it."""
        taken = queries.file_names(conn, pat_nums=[patient.pat_num])[patient.pat_num]
        return self._storage.put(folder=folder, file_name=name, data=data, taken=taken)

    def _undo(self, conn: Connection, doc_num: int, stored: Stored | None) -> None:
        """Leave neither a row nor a file: MyISAM keeps an inserted row through a rollback."""
        try:
            conn.rollback()
            conn.execute(text("DELETE FROM document WHERE DocNum = :d"), {"d": doc_num})
            conn.commit()
        except DBAPIError:
            # The server may have dropped the connection (a packet over max_allowed_packet):
            # delete on a fresh one, or MyISAM keeps the row.
            try:
                with self._engine.begin() as fresh:
                    fresh.execute(text("DELETE FROM document WHERE DocNum = :d"), {"d": doc_num})
            except DBAPIError as exc:
                log.error("document.undo_failed", docnum=doc_num, error=str(exc.orig))  # noqa: TRY400 - the reason is enough
        finally:
            if stored is not None:
                self._storage.discard(stored)
