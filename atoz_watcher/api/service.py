"""What the endpoints do, without HTTP: read rows into the seed's JSON, create documents.

Every failure leaves as an ``ApiError`` with the status and message the client reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from atoz_watcher.api.errors import ApiError
from atoz_watcher.api.models import (
    IMG_TYPES,
    SetByUrlRequest,
    UploadRequest,
    UploadSftpRequest,
    parse_date,
)
from atoz_watcher.api.present import (
    FilePaths,
    Json,
    Patient,
    document_json,
    page_json,
)
from atoz_watcher.api.upload_body import ParsedUpload, UploadBody, encoded_limit
from atoz_watcher.db import documents as document_table
from atoz_watcher.db import queries
from atoz_watcher.db.activity import NO_RECORD, Arrival, Recorder, Way
from atoz_watcher.documents.checks import CategoryError, PatientDeletedError, PatientNotFoundError
from atoz_watcher.documents.writer import Created, DocumentWriter, NewDocument
from atoz_watcher.errors import (
    ConfigError,
    DatabaseUnavailableError,
    LockTimeoutError,
    NoImageCategoryError,
)
from atoz_watcher.imaging.jobs import OnStored, no_thumbnails
from atoz_watcher.rules.dates import DATE_FORMAT
from atoz_watcher.rules.notes import DOWNLOAD_NOTE
from atoz_watcher.storage import Content, Spool, Storage, UnsafeNameError
from atoz_watcher.system.contained import LinkRefusedError

log = structlog.get_logger("atoz_watcher.api")

PATIENT_NOT_FOUND = "Patient not found"
DOCUMENT_NOT_FOUND = "Document not found"
NOT_BASE64 = "rawBase64 is not valid base64"
DATABASE_UNAVAILABLE = "The database is unavailable; try again later"
DATABASE_BUSY = "The database is busy (another program holds the registration lock); try again"
MYSQL_DATA_TOO_LONG = 1406
_URL_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}", re.ASCII)


def url_extension(url: str) -> str:
    """The extension of a URL's last path segment when it is a safe one (``.jpg``), else ""."""
    suffix = PurePosixPath(unquote(urlsplit(url).path)).suffix
    return suffix if _URL_EXTENSION.fullmatch(suffix) else ""


def new_document(
    request: UploadRequest | SetByUrlRequest | UploadSftpRequest,
    *,
    extension: str,
    file_name: str | None = None,
) -> NewDocument:
    """The document a request asks for. ``file_name``: the file's own name, kept as FileName
    (UploadSftp: the remote file's name, which is also its Description); None: Open Dental's
    generated name."""
    description = (
        file_name if isinstance(request, UploadSftpRequest) else request.description or None
    )
    return NewDocument(
        pat_num=request.pat_num,
        extension=extension,
        category=request.doc_category or None,  # 0 is "not given", as in Open Dental
        img_type=IMG_TYPES[request.img_type or "Document"],
        description=description,
        date_created=parse_date(request.date_created) if request.date_created else None,
        tooth_numbers=request.tooth_numbers or "",
        file_name=file_name,
    )


@contextmanager
def answered() -> Iterator[None]:
    """Our errors as the status and message a client reads."""
    try:
        yield
    except PatientNotFoundError:
        raise ApiError(404, PATIENT_NOT_FOUND) from None
    except (CategoryError, NoImageCategoryError, PatientDeletedError) as exc:
        raise ApiError(400, str(exc)) from None
    except UnsafeNameError as exc:
        raise ApiError(400, f"the patient's files cannot be stored: {exc}") from None
    except LinkRefusedError as exc:
        raise ApiError(
            400,
            f"The patient's folder holds a link where a file or folder belongs ({exc.relative}):"
            " refused, a link could lead out of the A-to-Z folder",
        ) from None
    except LockTimeoutError:
        raise ApiError(503, DATABASE_BUSY) from None
    except (DatabaseUnavailableError, DBAPIError) as exc:
        if (too_long := _data_too_long(exc)) is not None:
            raise ApiError(400, f"The database refused a value as too long: {too_long}") from None
        log.warning("api.database_unavailable", error=_reason(exc))
        raise ApiError(503, DATABASE_UNAVAILABLE) from None
    except ConfigError as exc:  # a table is missing
        raise ApiError(503, str(exc)) from None
    except OSError as exc:
        log.warning("api.store_failed", error=exc.strerror or type(exc).__name__)
        raise ApiError(
            503, f"The file could not be stored: {exc.strerror or 'I/O error'}"
        ) from None


def _data_too_long(exc: Exception) -> str | None:
    """MySQL's "Data too long for column 'RawBase64'" (a file over MEDIUMTEXT's 16 MB, stored
    InDatabase): the request's fault, not an outage."""
    cause = exc if isinstance(exc, DBAPIError) else exc.__cause__
    if not isinstance(cause, DBAPIError):
        return None
    args: tuple[object, ...] = tuple(getattr(cause.orig, "args", ()))
    if len(args) == 2 and args[0] == MYSQL_DATA_TOO_LONG:  # noqa: PLR2004 - (code, message)
        return str(args[1])
    return None


def _reason(exc: Exception) -> str:
    return str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)


@dataclass(frozen=True, slots=True)
class Uploaded:
    document: Json


class DocumentService:
    """The Documents API over one database and one storage."""

    def __init__(
        self,
        engine: Engine,
        writer: DocumentWriter,
        storage: Storage,
        *,
        paths: FilePaths,
        max_upload_bytes: int,
        in_database: bool,
        on_stored: OnStored = no_thumbnails,
        on_placeholder: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = datetime.now,
        activity: Recorder = NO_RECORD,
    ) -> None:
        self._on_placeholder = on_placeholder
        self._activity = activity
        self._engine = engine
        self._writer = writer
        self._storage = storage
        self._paths = paths
        self._max_upload = max_upload_bytes
        self._on_stored = on_stored
        self._in_database = in_database
        self._clock = clock
        # Once seen, mount and mountitem stay: no need to ask the catalogue on every GET.
        self._mount_tables_seen = False

    def _server_time(self) -> str:
        return self._clock().strftime(DATE_FORMAT)

    @staticmethod
    def _patient(conn: Connection, pat_num: int) -> Patient:
        row = queries.patient(conn, pat_num=pat_num)
        if row is None:
            raise PatientNotFoundError(pat_num)
        return Patient(
            pat_num=row.pat_num, image_folder=row.image_folder, lname=row.lname, fname=row.fname
        )

    @staticmethod
    def _categories(conn: Connection) -> dict[int, str]:
        return {c.def_num: c.name for c in queries.image_categories(conn)}

    def has_mount_tables(self, conn: Connection) -> bool:
        if not self._mount_tables_seen:
            self._mount_tables_seen = queries.has_mount_tables(conn)
        return self._mount_tables_seen

    def list_for(self, pat_num: int, *, limit: int, offset: int) -> list[Json]:
        """GET /documents?PatNum=N&Limit=L&Offset=O: one page of the patient's list, read by
        the database's LIMIT and OFFSET (``limit`` already capped by the caller)."""
        with answered(), self._engine.connect() as conn:
            patient = self._patient(conn, pat_num)
            rows = queries.list_page(
                conn,
                pat_num=pat_num,
                limit=limit,
                offset=offset,
                with_mounts=self.has_mount_tables(conn),
            )
        return page_json(rows, patient=patient, paths=self._paths, server_time=self._server_time())

    def one(self, doc_num: int) -> Json:
        """GET /documents/{DocNum}."""
        with answered(), self._engine.connect() as conn:
            entry = queries.document_entry(conn, doc_num=doc_num)
            if entry is None:
                raise ApiError(404, DOCUMENT_NOT_FOUND)
            patient = queries.patient(conn, pat_num=entry.pat_num)
            mount_num = 0
            if entry.mount_item_num and self.has_mount_tables(conn):
                mount_num = queries.mount_of_item(conn, mount_item_num=entry.mount_item_num) or 0
            categories = self._categories(conn)
        owner = (
            Patient(
                pat_num=patient.pat_num,
                image_folder=patient.image_folder,
                lname=patient.lname,
                fname=patient.fname,
            )
            if patient is not None
            else Patient(pat_num=entry.pat_num, image_folder="", lname="", fname="")
        )
        return document_json(
            entry,
            folder=self._paths.folder(owner),
            categories=categories,
            mount_num=mount_num,
            server_time=self._server_time(),
        )

    def upload_body(self) -> UploadBody:
        """A parser for one Upload's body, spooling rawBase64 where storage can take it."""
        return UploadBody(max_bytes=self._max_upload, new_spool=self._storage.new_spool)

    def upload(self, parsed: ParsedUpload) -> Uploaded:
        """POST /documents/Upload, its body read: the file stored at once (the spool moved into
        place), its row, then (later) its thumbnail."""
        limit = self._raw_base64_limit()
        if limit is not None and parsed.raw.chars > limit:
            raise ApiError(
                400,
                f"rawBase64 is too large for the database: document.RawBase64 holds at most "
                f"{limit} characters of base64 here",
            )
        if parsed.raw.bad:
            raise ApiError(400, NOT_BASE64)
        request = parsed.request
        return self.store(new_document(request, extension=request.extension), parsed.raw.spool)

    def store(self, new: NewDocument, data: Content, *, endpoint: str = "Upload") -> Uploaded:
        """The file stored at once and its row (Upload, UploadSftp: ``endpoint``, as the
        activity log records it); the thumbnail comes later."""
        limit = self._raw_base64_limit()
        size = data.size if isinstance(data, Spool) else len(data)
        if limit is not None and encoded_limit(size) > limit:
            raise ApiError(
                400,
                f"The file is too large for the database: document.RawBase64 holds at most "
                f"{limit} characters of base64 here",
            )
        with answered():
            created = self._writer.create(new, data)
        self._arrived(created.doc_num, endpoint)
        self._thumbnail(created)
        return Uploaded(document=self.one(created.doc_num))

    def _raw_base64_limit(self) -> int | None:
        """The longest base64 MySQL/MariaDB stores in document.RawBase64 (InDatabase)."""
        if not self._in_database:
            return None
        with answered(), self._engine.connect() as conn:
            return document_table.raw_base64_limit(conn)

    def set_by_url(self, request: SetByUrlRequest) -> Json:
        """POST /documents/SetByUrl: the placeholder row, Note ``_download_:<url>``."""
        new = new_document(request, extension=url_extension(request.url))
        with answered():
            created = self._writer.create_placeholder(new, note=DOWNLOAD_NOTE + request.url)
        self._arrived(created.doc_num, "SetByUrl")
        if self._on_placeholder is not None:
            self._on_placeholder()
        return self.one(created.doc_num)

    def _arrived(self, doc_num: int, endpoint: str) -> None:
        """The row is made: the activity log records that it came through ``endpoint``."""
        self._activity.arrived([Arrival(doc_num, Way.API, endpoint)])

    def _thumbnail(self, created: Created) -> None:
        """The stored file's thumbnail job, handed on: the reply does not wait for it."""
        job = created.thumbnail_job(stamp=self._clock())
        if job is not None:
            self._on_stored(job)
