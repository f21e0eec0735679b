"""Creating documents from bytes (API Upload, materialised placeholders), exactly once.

The file and its row are made under the registration lock, the same lock the folder
registrar takes: the daemon, seeing the new file appear in a patient folder, waits for the
lock, then finds the FileName already in the table and leaves the file alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from atoz_watcher.db import documents as document_table
from atoz_watcher.db import queries
from atoz_watcher.db.lock import locked_connection
from atoz_watcher.db.rows import blank_document
from atoz_watcher.db.shape import TableShape
from atoz_watcher.documents.checks import PatientNotFoundError, patient_and_category
from atoz_watcher.imaging.jobs import ThumbJob, job_for
from atoz_watcher.rules.layout import folder_name
from atoz_watcher.rules.matching import PatientRow
from atoz_watcher.rules.naming import free_name_candidates
from atoz_watcher.storage import Content, Storage, Stored

log = structlog.get_logger("atoz_watcher.documents")


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
    # A radiograph filed as the folder import files a ``.dcm`` (the scanner inbox's DICOM):
    # Open Dental's PrintHeading and the window read from the file (WindowingMin, Max).
    print_heading: bool = False
    windowing: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class Created:
    doc_num: int
    pat_num: int
    stored: Stored | None  # None for a placeholder (SetByUrl) until it is materialised

    def thumbnail_job(self, *, stamp: datetime) -> ThumbJob | None:
        """The thumbnail job of the file just stored under a name we chose (so always made
        afresh); None for a placeholder, InDatabase storage (no thumbnail is kept) or a file
        that is no image."""
        if self.stored is None or self.stored.path is None:
            return None
        return job_for(
            self.stored.path,
            stamp=stamp,
            pat_num=self.pat_num,
            doc_num=self.doc_num,
            force=True,
        )


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
            patient, category = patient_and_category(
                conn, pat_num=new.pat_num, category=new.category
            )
            doc_num = self._insert(conn, new, category=category, now=now, note="")
            stored = self._store_and_fill(
                conn,
                patient,
                doc_num,
                name=new.file_name or generated_name(patient, doc_num, new.extension),
                data=data,
                describe=new.description is None,
                new_row=True,
            )
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
            _, category = patient_and_category(conn, pat_num=new.pat_num, category=new.category)
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
            target = document_table.fill_target(conn, doc_num=doc_num)
            if target is None or target.note != note or target.file_name:
                conn.rollback()
                return None
            patient = queries.patient(conn, pat_num=target.pat_num)
            if patient is None:
                conn.rollback()
                raise PatientNotFoundError(target.pat_num)
            stored = self._store_and_fill(
                conn,
                patient,
                doc_num,
                name=generated_name(patient, doc_num, extension),
                data=data,
                describe=not target.description,
                new_row=False,
                # Changed: Open Dental's freshness rule then rebuilds any old thumbnail.
                also={"Note": "", "DateTStamp": datetime.now().replace(microsecond=0)},
            )
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

    def _store_and_fill(
        self,
        conn: Connection,
        patient: PatientRow,
        doc_num: int,
        *,
        name: str,
        data: Content,
        describe: bool,
        new_row: bool,
        also: Mapping[str, object] | None = None,
    ) -> Stored:
        """Store ``data`` as ``name`` in the patient's folder (or the row) and fill row
        ``doc_num``'s FileName and RawBase64 (and Description when ``describe``; ``also``),
        committed under the registration lock held on ``conn``.

        On any failure the stored file is discarded and the row undone: a ``new_row`` is
        deleted, a placeholder is left as it was.
        """
        stored: Stored | None = None
        try:
            stored = self._store(conn, patient, self._folder(conn, patient), name=name, data=data)
            fields: dict[str, object] = {
                "FileName": stored.file_name,
                "RawBase64": stored.raw_base64,
                **(also or {}),
            }
            if describe:
                fields["Description"] = stored.file_name
            document_table.fill(conn, doc_num=doc_num, fields=fields)
            conn.commit()
        except BaseException:
            self._undo(conn, doc_num, stored, delete_row=new_row)
            raise
        return stored

    def _table(self, conn: Connection) -> TableShape:
        # Called under the registration lock, so two requests never reflect it at once.
        if self._shape is None:
            self._shape = TableShape.reflect(conn, "document")
        return self._shape

    def _insert(
        self, conn: Connection, new: NewDocument, *, category: int, now: datetime, note: str
    ) -> int:
        row = blank_document(
            PatNum=new.pat_num,
            Description=new.description or "",
            DocCategory=category,
            ImgType=new.img_type,
            DateCreated=new.date_created or now,
            DateTStamp=now,
            ToothNumbers=new.tooth_numbers,
            Note=note,
            PrintHeading=int(new.print_heading),
            WindowingMin=new.windowing[0],
            WindowingMax=new.windowing[1],
        )
        return document_table.insert(conn, shape=self._table(conn), row=row)

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
        taken = queries.taken_names(conn, pat_num=patient.pat_num, names=free_name_candidates(name))
        return self._storage.put(folder=folder, file_name=name, data=data, taken=taken)

    def _undo(
        self, conn: Connection, doc_num: int, stored: Stored | None, *, delete_row: bool
    ) -> None:
        """Leave no file, and no row that was not there before: MyISAM keeps an inserted row
        through a rollback, so a new row is deleted."""
        try:
            conn.rollback()
            if delete_row:
                document_table.delete(conn, doc_num=doc_num)
                conn.commit()
        except DBAPIError:
            # The server may have dropped the connection (a packet over max_allowed_packet),
            # taking what was not committed with it: delete a new row on a fresh one, or
            # MyISAM keeps it.
            if delete_row:
                self._delete_afresh(doc_num)
        finally:
            if stored is not None:
                self._storage.discard(stored)

    def _delete_afresh(self, doc_num: int) -> None:
        try:
            with self._engine.begin() as fresh:
                document_table.delete(fresh, doc_num=doc_num)
        except DBAPIError as exc:
            log.error("document.undo_failed", docnum=doc_num, error=str(exc.orig))  # noqa: TRY400 - the reason is enough
