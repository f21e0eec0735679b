"""The SFTP endpoints without HTTP: UploadSftp, DownloadSftp, Thumbnails, DownloadMount.

Every check that needs no connection (the address, the allow-lists, the patient, the document or
mount) comes first; the SFTP site is contacted last, once per request. Every failure leaves as
an ``ApiError``: an SFTP failure is a 400 whose message says what failed; when
``[sftp] max_in_flight`` transfers are already running, a 503 with ``Retry-After``, at once (also
before any other work, when they are running as the request comes in).
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy import Engine

from atoz_watcher.api.errors import ApiError
from atoz_watcher.api.models import (
    MAX_VARCHAR,
    DownloadMountRequest,
    DownloadSftpRequest,
    SftpRequest,
    ThumbnailsRequest,
    UploadSftpRequest,
)
from atoz_watcher.api.present import Json
from atoz_watcher.api.service import (
    DOCUMENT_NOT_FOUND,
    PATIENT_NOT_FOUND,
    DocumentService,
    Uploaded,
    answered,
    new_document,
)
from atoz_watcher.db import queries
from atoz_watcher.documents.checks import patient_and_category
from atoz_watcher.imaging.jobs import (
    Outcome,
    ThumbJob,
    adjust_of,
    carry_out,
    job_for,
    job_for_document,
    read_thumbnail,
)
from atoz_watcher.imaging.mounts import MountComposer, MountNotFoundError, MountTooLargeError
from atoz_watcher.imaging.render import Renderer, extension, thumbnailable
from atoz_watcher.net.sftp import SftpClient
from atoz_watcher.net.sftp_address import Credentials, Failure, SftpError
from atoz_watcher.rules.layout import folder_name
from atoz_watcher.rules.naming import plain
from atoz_watcher.storage import Storage
from atoz_watcher.system.contained import LinkRefusedError, NotRegularError

log = structlog.get_logger("atoz_watcher.api")

MOUNT_NOT_FOUND = "Mount not found"
NO_DOCUMENTS = "No documents exist for this patient"
NO_THUMBNAILS = "No documents could be made into thumbnails."
NO_MOUNT_IMAGES = "No mount images could be downloaded."
DOC_OR_MOUNT = "DocNum or MountNum is required"
# Open Dental thumbnails standard images only: PDFs are skipped, and so is DICOM (a thumbnail
# under a .dcm name would hold a PNG that no DICOM viewer opens).
NOT_THUMBNAILED = frozenset({"pdf", "dcm"})
COMPOSITE_EXTENSIONS = frozenset({".jpg", ".jpeg"})
_PAGE = 500
# Seconds a client is asked to wait when every SFTP transfer slot is taken.
RETRY_AFTER_S = 5


@contextmanager
def sftp_answered() -> Iterator[None]:
    """An SFTP failure as a 400 saying what failed; too many transfers at once as a 503."""
    try:
        yield
    except SftpError as exc:
        if exc.kind is Failure.BUSY:
            raise ApiError(503, exc.message, {"Retry-After": str(RETRY_AFTER_S)}) from None
        raise ApiError(400, exc.message) from None


def image_for_thumbnail(file_name: str) -> bool:
    """Does Thumbnails send this document? Standard images only."""
    return thumbnailable(file_name) and extension(file_name) not in NOT_THUMBNAILED


class SftpService:
    """The four SFTP endpoints over one database, storage and A-to-Z root."""

    def __init__(
        self,
        engine: Engine,
        documents: DocumentService,
        *,
        sftp: SftpClient,
        storage: Storage,
        root: Path,
        renderer: Renderer,
        composer: MountComposer,
        in_database: bool,
    ) -> None:
        self._engine = engine
        self._documents = documents
        self._sftp = sftp
        self._storage = storage
        self._root = root
        self._renderer = renderer
        self._composer = composer
        self._in_database = in_database

    def _credentials(self, request: SftpRequest) -> Credentials:
        """The checked address; a 503 at once when no transfer could start now anyway."""
        with sftp_answered():
            self._sftp.require_room()
            return self._sftp.credentials(
                request.sftp_address,
                request.sftp_port,
                request.sftp_username,
                request.sftp_password,
            )

    # -- UploadSftp ------------------------------------------------------------------------------

    def upload_sftp(self, request: UploadSftpRequest) -> Uploaded:
        """Pull the file, then store it as Upload does; Description = the remote file's name."""
        credentials = self._credentials(request)
        address = credentials.address
        if address.names_folder:
            raise ApiError(
                400,
                "SftpAddress must name a file with an extension "
                "(MySftpSite/folder/SmithJRadiograph.png)",
            )
        name = address.file_name
        if len(name) > MAX_VARCHAR:
            raise ApiError(400, f"The file's name is longer than {MAX_VARCHAR} characters")
        new = new_document(request, extension=posixpath.splitext(name)[1], file_name=name)
        # The patient and the category before the transfer: a 404 costs no download.
        with answered(), self._engine.connect() as conn:
            patient_and_category(conn, pat_num=new.pat_num, category=new.category)
        with sftp_answered():
            data = self._sftp.fetch(credentials)
        return self._documents.store(new, data, endpoint="UploadSftp")

    # -- DownloadSftp ----------------------------------------------------------------------------

    def download_sftp(self, request: DownloadSftpRequest) -> str:
        """Put the document's file, or the mount's composite JPEG; the path written."""
        doc_num, mount_num = request.doc_num or 0, request.mount_num or 0
        if not doc_num and not mount_num:
            raise ApiError(400, DOC_OR_MOUNT)
        if doc_num and mount_num:
            raise ApiError(400, "Give DocNum or MountNum, not both")
        credentials = self._credentials(request)
        if doc_num:
            file_name, data = self._document_file(doc_num)
            _require_extension(credentials, {extension_of(file_name)}, what="the document's")
        else:
            file_name, data = f"Mount{mount_num}.jpg", self._composite(mount_num)
            _require_extension(credentials, COMPOSITE_EXTENSIONS, what="a mount composite's")
        with sftp_answered():
            return self._sftp.put(credentials, data, default_name=file_name)

    def _document_file(self, doc_num: int) -> tuple[str, bytes]:
        with answered(), self._engine.connect() as conn:
            source = queries.document_source(conn, doc_num=doc_num, with_raw=self._in_database)
        if source is None:
            raise ApiError(404, DOCUMENT_NOT_FOUND)
        if source.file_name and not plain(source.file_name):
            raise ApiError(
                400,
                f"Document {doc_num}'s FileName is not a plain file name (it holds a folder "
                "separator, '..' or NUL): refused, it could lead out of the patient's folder",
            )
        data = self._read(source, links=True)
        if data is None:
            raise ApiError(
                400,
                f"Document {doc_num} has no file to send: it is not stored yet, or its file is "
                "missing from the patient's folder",
            )
        return source.file_name, data

    def _read(self, source: queries.DocumentSource, *, links: bool = False) -> bytes | None:
        """A document's bytes; None when it has none (a placeholder, a missing file, a name
        that is not plain, a link). ``links``: a link is a 400 saying so instead."""
        if not source.file_name or (self._in_database and not source.raw_base64):
            return None
        folder = source.image_folder or folder_name(source.lname, source.fname, source.pat_num)
        with answered():  # any other OSError: the folder is unavailable, a 503
            try:
                return self._storage.read(
                    folder=folder, file_name=source.file_name, raw_base64=source.raw_base64
                )
            except LinkRefusedError:
                if links:
                    raise ApiError(
                        400,
                        f"Document {source.doc_num}'s file or patient folder is a link: refused,"
                        " a link could lead out of the A-to-Z folder",
                    ) from None
                log.info("api.file_unreadable", docnum=source.doc_num, reason="link")
                return None
            except (
                FileNotFoundError,
                IsADirectoryError,
                NotADirectoryError,
                NotRegularError,
                ValueError,
            ) as exc:
                # ValueError: an unsafe name (UnsafeNameError), RawBase64 that is not base64.
                log.info("api.file_unreadable", docnum=source.doc_num, reason=type(exc).__name__)
                return None

    def _composite(self, mount_num: int) -> bytes:
        with answered():
            try:
                return self._composer.jpeg(mount_num)
            except MountNotFoundError:
                raise ApiError(404, MOUNT_NOT_FOUND) from None
            except MountTooLargeError as exc:
                raise ApiError(400, str(exc)) from None

    # -- Thumbnails ------------------------------------------------------------------------------

    def thumbnails(self, request: ThumbnailsRequest) -> list[Json] | None:
        """Each image's thumbnail (built when missing or stale) to the SFTP folder; None when
        no document could be made into one."""
        credentials = self._credentials(request)
        with answered(), self._engine.connect() as conn:
            if queries.patient(conn, pat_num=request.pat_num) is None:
                raise ApiError(404, PATIENT_NOT_FOUND)
            if queries.count_documents(conn, pat_num=request.pat_num) == 0:
                raise ApiError(404, NO_DOCUMENTS)
        files: list[tuple[queries.DocumentFile, bytes]] = []
        for document in self._patient_images(request.pat_num):
            thumbnail = self._thumbnail(document)
            if thumbnail is not None:
                files.append((document, thumbnail))
        if not files:
            return None
        with sftp_answered():
            self._sftp.put_many(credentials, [(d.file_name, data) for d, data in files])
        return [{"DocNum": d.doc_num, "FileName": d.file_name} for d, _ in files]

    def _patient_images(self, pat_num: int) -> Iterator[queries.DocumentFile]:
        after = 0
        while True:
            with answered(), self._engine.connect() as conn:
                page = queries.document_files(
                    conn, after_doc_num=after, limit=_PAGE, pat_num=pat_num
                )
            yield from (d for d in page if image_for_thumbnail(d.file_name))
            if len(page) < _PAGE:
                return
            after = page[-1].doc_num

    def _thumbnail(self, document: queries.DocumentFile) -> bytes | None:
        if self._in_database:
            return self._thumbnail_from_row(document)
        job = job_for_document(self._root, document)
        if not isinstance(job, ThumbJob):
            return None
        if carry_out(job, self._renderer) not in {Outcome.MADE, Outcome.FRESH}:
            return None
        return read_thumbnail(job)

    def _thumbnail_from_row(self, document: queries.DocumentFile) -> bytes | None:
        """InDatabase: the image from RawBase64 into a private temporary folder, its thumbnail
        rendered there (always afresh: there is no Thumbnails/ folder to keep it in)."""
        with answered(), self._engine.connect() as conn:
            source = queries.document_source(conn, doc_num=document.doc_num, with_raw=True)
        if source is None:
            return None
        data = self._read(source)
        if data is None:
            return None
        with tempfile.TemporaryDirectory(prefix="atoz-thumb-") as scratch:
            path = Path(scratch) / source.file_name  # a plain name: _read checked it
            path.write_bytes(data)
            job = job_for(
                path,
                stamp=document.stamp or datetime.min,
                pat_num=document.pat_num,
                doc_num=document.doc_num,
                adjust=adjust_of(document),
                root=Path(scratch),
                force=True,
            )
            if job is None or carry_out(job, self._renderer) is not Outcome.MADE:
                return None
            return read_thumbnail(job)

    # -- DownloadMount ---------------------------------------------------------------------------

    def download_mount(self, request: DownloadMountRequest) -> list[Json] | None:
        """Each document on the mount to the SFTP folder under its own FileName; None when
        none could be read."""
        credentials = self._credentials(request)
        with answered(), self._engine.connect() as conn:
            if not (
                self._documents.has_mount_tables(conn)
                and queries.mount_exists(conn, mount_num=request.mount_num)
            ):
                raise ApiError(404, f"{MOUNT_NOT_FOUND}.")
            doc_nums = queries.mount_doc_nums(conn, mount_num=request.mount_num)
        files: list[tuple[int, str, bytes]] = []
        for doc_num in doc_nums:
            with answered(), self._engine.connect() as conn:
                source = queries.document_source(conn, doc_num=doc_num, with_raw=self._in_database)
            data = self._read(source) if source is not None else None
            if source is not None and data is not None:
                files.append((doc_num, source.file_name, data))
        if not files:
            return None
        with sftp_answered():
            self._sftp.put_many(credentials, [(name, data) for _, name, data in files])
        return [{"DocNum": doc_num, "FileName": name} for doc_num, name, _ in files]


def extension_of(name: str) -> str:
    return posixpath.splitext(name)[1].lower()


def _require_extension(
    credentials: Credentials, allowed: set[str] | frozenset[str], *, what: str
) -> None:
    """A file name in SftpAddress must carry the file's own extension (any case)."""
    address = credentials.address
    if address.names_folder:
        return
    if extension_of(address.file_name) not in allowed:
        wanted = " or ".join(sorted(allowed)) or "no extension"
        raise ApiError(
            400, f"SftpAddress must end in {wanted}, {what} file type (invalid file extension)"
        )
