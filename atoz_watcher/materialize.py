"""Placeholder rows turned into files, in place: the materialiser.

Open Dental's API does not store an Upload or a SetByUrl file at once: it writes a ``document``
row with no FileName and a Note of ``_rawBase64_:`` + extension + ``_`` + base64, or
``_download_:`` + URL, and makes the file when a user opens the document. We make it here, for
rows written by us or by anyone else in the same database, and keep the DocNum: the file is
stored as Upload stores it (Open Dental's generated name in the patient folder, or
``document.RawBase64``), FileName set, Note cleared, and a thumbnail made.

Downloads go through ``netguard``: http(s) only, no internal address unless allow-listed,
checked on every redirect hop (at most 5) and again where the connection is opened. Each
download has a total time limit and a size limit (Content-Length first, then while streaming).

The extension of a downloaded file is, in order:
1. the suffix of the URL's path (the final URL after redirects, then the original), when it is
   a safe extension (a dot and 1-10 letters or digits) and not a web program's (``.php``...);
2. the Content-Type's (``image/jpeg`` -> ``.jpg``, ``application/pdf`` -> ``.pdf``...);
3. the content's own signature (JPEG, PNG, GIF, TIFF, BMP, WebP, PDF, DICOM);
4. none: the file is still stored (``SmithJohn12``), never dropped for want of a name.

A row that fails (refused URL, HTTP error, timeout, too large, bad base64, a full disk) is tried
again after a growing delay; after ``max_attempts`` failures it is left as it is, with one
``materialize.gave_up`` warning and an outcome for the metric. The row is never deleted. The
book of failures lives in memory: a restart gives every row its attempts again. A database
outage ends the pass and does not count against a row (the row is not at fault).

Logs never hold a payload, nor a URL's user name, password or query string (signed URLs carry
their credentials there).
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Final, TextIO

import httpx
import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from atoz_watcher import __version__
from atoz_watcher.config import MaterializerSettings, Settings
from atoz_watcher.db import queries
from atoz_watcher.documents import (
    DOWNLOAD_NOTE,
    RAW_BASE64_NOTE,
    Created,
    DocumentWriter,
    PatientNotFoundError,
)
from atoz_watcher.errors import AtozError, DatabaseUnavailableError
from atoz_watcher.netguard import (
    GuardedTransport,
    NetGuard,
    RefusedError,
    Resolver,
    system_resolver,
)
from atoz_watcher.storage import InDatabase, LocalAtoZ, Storage
from atoz_watcher.thumbnailing import Outcome, ThumbJob, carry_out, thumbnail_of
from atoz_watcher.thumbs import Renderer, thumbnailable

log = structlog.get_logger("atoz_watcher.materialize")

# Placeholder DocNums read per query; each row's Note (a whole file for an Upload) is then read
# on its own, so memory holds one file at a time.
PAGE: Final = 20
MAX_REDIRECTS: Final = 5
# Per-step network limits, within the total ``timeout``: a dead host fails fast, a stalled
# transfer is cut; the total is also checked between chunks.
CONNECT_S: Final = 5.0
READ_S: Final = 10.0
CHUNK: Final = 64 * 1024
# Backoff between attempts at a failing row: 1 min, 2, 4, 8, ... at most an hour.
RETRY_FIRST_S: Final = 60.0
RETRY_MAX_S: Final = 3600.0
JOIN_S: Final = 5.0

_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}")
# Path suffixes that name the program serving the file, not the file.
_PROGRAM_SUFFIXES: Final = frozenset(
    {".php", ".asp", ".aspx", ".ashx", ".jsp", ".cgi", ".pl", ".py", ".htm", ".html", ".do"}
)
_BY_CONTENT_TYPE: Final = {
    "image/jpeg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/x-ms-bmp": ".bmp",
    "image/tiff": ".tif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "application/dicom": ".dcm",
    "text/plain": ".txt",
    "application/rtf": ".rtf",
    "text/rtf": ".rtf",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}
_SIGNATURES: Final = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"%PDF-", ".pdf"),
)
_BASE64_WHITESPACE = re.compile(r"\s+")
_BMP_HEADER: Final = 14
_SHOWN: Final = 20  # characters of a bad extension quoted in its error


class Failure(enum.StrEnum):
    """Why a placeholder was not materialised; also the outcome reported for the metric."""

    BAD_NOTE = "bad_note"  # malformed Note, unsafe extension, bad base64
    REFUSED = "refused"  # netguard: scheme, internal address
    HTTP_ERROR = "http_error"  # a non-2xx status, too many redirects
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    NETWORK = "network"  # cannot resolve or connect, the connection broke
    PATIENT_MISSING = "patient_missing"
    STORAGE = "storage"  # the file could not be written
    ERROR = "error"  # anything unforeseen (logged with its traceback)


MATERIALISED: Final = "materialised"
GAVE_UP: Final = "gave_up"
RACED: Final = "raced"  # someone (Open Dental, another atoz-watcher) materialised it first
DEFERRED: Final = "database"  # the database failed: tried again, not counted against the row


class MaterializeError(AtozError):
    def __init__(self, kind: Failure, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(f"{kind}: {reason}")


class BadNoteError(MaterializeError):
    def __init__(self, reason: str) -> None:
        super().__init__(Failure.BAD_NOTE, reason)


class StoppedError(AtozError):
    """The pass was asked to stop in the middle of a download; nothing is counted."""


# -- notes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawBase64Note:
    extension: str
    payload: str  # base64, as stored; decoded by decode_payload

    def __repr__(self) -> str:  # a repr must never carry a whole file into a log or traceback
        return f"RawBase64Note(extension={self.extension!r}, payload=<{len(self.payload)} chars>)"


@dataclass(frozen=True, slots=True)
class DownloadNote:
    url: str


def is_safe_extension(extension: str) -> bool:
    """A dot and 1-10 ASCII letters or digits (``.jpg``, ``.docx``)."""
    return _EXTENSION.fullmatch(extension) is not None


def parse_note(note: str) -> RawBase64Note | DownloadNote | None:
    """What a placeholder's Note asks for; None when the Note is no placeholder.

    The prefixes are matched exactly, as Open Dental does. Raises BadNoteError for a
    placeholder that cannot be used (its reason never quotes the payload).
    """
    if note.startswith(RAW_BASE64_NOTE):
        extension, separator, payload = note[len(RAW_BASE64_NOTE) :].partition("_")
        if not separator:
            raise BadNoteError("a _rawBase64_ note without the '_' after its extension")
        if not is_safe_extension(extension):
            shown = extension if len(extension) <= _SHOWN else f"{extension[:_SHOWN]}..."
            raise BadNoteError(
                f"unsafe extension {shown!r} (a dot and 1-10 letters or digits expected)"
            )
        return RawBase64Note(extension=extension, payload=payload)
    if note.startswith(DOWNLOAD_NOTE):
        url = note[len(DOWNLOAD_NOTE) :].strip()
        if not url:
            raise BadNoteError("a _download_ note without a URL")
        return DownloadNote(url=url)
    return None


def decode_payload(note: RawBase64Note, *, max_bytes: int) -> bytes:
    """The file a ``_rawBase64_`` note holds.

    Whitespace is ignored, as .NET's Convert.FromBase64String ignores it; anything else that
    is not base64 is an error, never silently dropped.
    """
    payload = _BASE64_WHITESPACE.sub("", note.payload)
    if not payload:
        raise BadNoteError("the _rawBase64_ note holds no data")
    if len(payload) // 4 * 3 > max_bytes + 2:
        raise MaterializeError(
            Failure.TOO_LARGE, f"about {len(payload) // 4 * 3} bytes, more than {max_bytes}"
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadNoteError(f"the payload ({len(payload)} characters) is not valid base64") from None
    if len(data) > max_bytes:
        raise MaterializeError(Failure.TOO_LARGE, f"{len(data)} bytes, more than {max_bytes}")
    return data


def redact_url(url: str | httpx.URL) -> str:
    """``url`` fit for a log line: no user name or password, no query string or fragment."""
    text = str(url).split("#", 1)[0].split("?", 1)[0]
    scheme, slashes, rest = text.partition("//")
    if not slashes:
        scheme, rest = "", text
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = authority.rpartition("@")[2]
    return f"{scheme}{slashes}{authority}{slash}{path}"


# -- downloads -------------------------------------------------------------------------------


def _signature_extension(data: bytes) -> str:
    for magic, extension in _SIGNATURES:
        if data.startswith(magic):
            return extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[128:132] == b"DICM":
        return ".dcm"
    # "BM" alone is too weak: a BMP also states its own length in bytes 2-5.
    if (
        data[:2] == b"BM"
        and len(data) >= _BMP_HEADER
        and int.from_bytes(data[2:6], "little") == len(data)
    ):
        return ".bmp"
    return ""


def extension_for(urls: tuple[httpx.URL, ...], content_type: str, data: bytes) -> str:
    """The extension a downloaded file is stored with (the module docstring gives the order)."""
    for url in urls:
        suffix = PurePosixPath(url.path).suffix.lower()
        if is_safe_extension(suffix) and suffix not in _PROGRAM_SUFFIXES:
            return suffix
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _BY_CONTENT_TYPE:
        return _BY_CONTENT_TYPE[media_type]
    return _signature_extension(data)


@dataclass(frozen=True, slots=True)
class Download:
    data: bytes
    extension: str
    url: httpx.URL  # where the bytes came from, after redirects


def _never() -> bool:
    return False


def _ignore(outcome: object) -> None:
    del outcome


class Downloader:
    """GETs a URL under netguard, following at most MAX_REDIRECTS redirects itself."""

    def __init__(
        self,
        guard: NetGuard,
        *,
        timeout: float,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._guard = guard
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._clock = clock

    def fetch(self, url: str, *, should_stop: Callable[[], bool] = _never) -> Download:
        """The file at ``url``; raises MaterializeError (or StoppedError)."""
        deadline = self._clock() + self._timeout
        first = self._checked(url)
        current = first
        # A client per download: nothing (connections, cookies) is shared between documents.
        with httpx.Client(
            transport=GuardedTransport(self._guard),
            trust_env=False,  # no proxy from the environment: it would resolve names itself
            follow_redirects=False,  # each hop is checked here, before it is requested
            headers={
                # The file as stored: no compressed transfer to inflate (no gzip bomb).
                "Accept-Encoding": "identity",
                "User-Agent": f"atoz-watcher/{__version__}",
            },
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                response_url, location, download = self._get(
                    client, current, deadline=deadline, should_stop=should_stop
                )
                if download is not None:
                    data, content_type = download
                    extension = extension_for((response_url, first), content_type, data)
                    return Download(data=data, extension=extension, url=response_url)
                try:
                    current = self._checked(response_url.join(location))
                except httpx.InvalidURL:
                    raise MaterializeError(
                        Failure.HTTP_ERROR, f"{redact_url(response_url)} redirects to a bad URL"
                    ) from None
        raise MaterializeError(
            Failure.HTTP_ERROR, f"more than {MAX_REDIRECTS} redirects from {redact_url(first)}"
        )

    def _checked(self, url: str | httpx.URL) -> httpx.URL:
        try:
            return self._guard.check_url(url)
        except RefusedError as exc:
            raise MaterializeError(Failure.REFUSED, exc.reason) from None
        except OSError as exc:
            raise MaterializeError(Failure.NETWORK, f"cannot resolve: {exc}") from None

    def _timeouts(self, deadline: float) -> httpx.Timeout:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise MaterializeError(Failure.TIMEOUT, f"took longer than {self._timeout:g} s")
        connect, read = min(CONNECT_S, remaining), min(READ_S, remaining)
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)

    def _get(
        self,
        client: httpx.Client,
        url: httpx.URL,
        *,
        deadline: float,
        should_stop: Callable[[], bool],
    ) -> tuple[httpx.URL, str, tuple[bytes, str] | None]:
        """One hop: (its URL, the redirect's Location or "", (data, Content-Type) or None)."""
        shown = redact_url(url)
        try:
            with client.stream("GET", url, timeout=self._timeouts(deadline)) as response:
                if response.is_redirect:
                    return response.url, response.headers["location"], None
                if not response.is_success:
                    raise MaterializeError(
                        Failure.HTTP_ERROR, f"HTTP {response.status_code} from {shown}"
                    )
                data = self._read(response, deadline=deadline, should_stop=should_stop)
                return response.url, "", (data, response.headers.get("content-type", ""))
        except RefusedError as exc:  # the connect-time check (a name that changed its answer)
            raise MaterializeError(Failure.REFUSED, exc.reason) from None
        except httpx.TimeoutException:
            raise MaterializeError(Failure.TIMEOUT, f"timed out fetching {shown}") from None
        except httpx.HTTPError as exc:
            # httpx's messages name the failure ("[Errno 111] Connection refused"), not the URL.
            raise MaterializeError(
                Failure.NETWORK, f"{type(exc).__name__} fetching {shown}: {exc}"
            ) from None

    def _read(
        self, response: httpx.Response, *, deadline: float, should_stop: Callable[[], bool]
    ) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise MaterializeError(
                Failure.TOO_LARGE, f"Content-Length {declared} is more than {self._max_bytes}"
            )
        data = bytearray()
        for chunk in response.iter_bytes(CHUNK):
            data += chunk
            if len(data) > self._max_bytes:
                raise MaterializeError(
                    Failure.TOO_LARGE, f"more than {self._max_bytes} bytes (download cut)"
                )
            if self._clock() > deadline:
                raise MaterializeError(Failure.TIMEOUT, f"took longer than {self._timeout:g} s")
            if should_stop():
                raise StoppedError("stopped during a download")
        return bytes(data)


# -- the materialiser ------------------------------------------------------------------------


@dataclass(slots=True)
class _Attempts:
    """One failing row: failures counted toward max_attempts, and when to try again."""

    count: int = 0
    delay: float = 0.0
    not_before: float = 0.0
    reason: str = ""
    gave_up: bool = False


@dataclass
class Summary:
    """One pass."""

    materialised: list[tuple[int, str]] = field(default_factory=list)  # (DocNum, FileName)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (DocNum, "kind: reason")
    gave_up: list[int] = field(default_factory=list)  # failed for the last time this pass
    waiting: int = 0  # failed before; their next attempt is not due yet
    given_up_before: int = 0  # left alone: given up in an earlier pass
    raced: int = 0  # materialised by someone else while we worked
    thumbnails: Counter[Outcome] = field(default_factory=Counter)
    database_error: str = ""  # the pass ended early: the database failed
    stopped: bool = False


def failure_of(exc: Exception) -> tuple[Failure, str]:
    """What a failed attempt counts as, and its reason for the log."""
    if isinstance(exc, MaterializeError):
        return exc.kind, exc.reason
    if isinstance(exc, PatientNotFoundError):
        return Failure.PATIENT_MISSING, f"patient {exc.pat_num} not found"
    if isinstance(exc, OSError | ValueError):  # disk full, a share gone, an unsafe folder name
        return Failure.STORAGE, str(exc)
    return Failure.ERROR, type(exc).__name__


class Materializer:
    """Finds placeholder rows and stores their files; one thread at a time."""

    def __init__(
        self,
        engine: Engine,
        storage: Storage,
        settings: MaterializerSettings,
        *,
        lock_timeout_s: int = 60,
        renderer: Renderer | None = None,
        on_outcome: Callable[[str], None] | None = None,
        on_thumbnail: Callable[[Outcome], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        resolver: Resolver = system_resolver,
        page: int = PAGE,
        retry_first_s: float = RETRY_FIRST_S,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self._engine = engine
        self._writer = DocumentWriter(engine, storage, lock_timeout_s=lock_timeout_s)
        self._settings = settings
        self._renderer = renderer
        self._on_outcome = on_outcome if on_outcome is not None else _ignore
        self._on_thumbnail = on_thumbnail if on_thumbnail is not None else _ignore
        self._clock = clock
        self._downloader = Downloader(
            NetGuard(settings.allow_hosts, resolver=resolver),
            timeout=settings.timeout,
            max_bytes=settings.max_download_bytes,
        )
        self._page = page
        self._retry_first_s = retry_first_s
        self._retry_max_s = retry_max_s
        self._book: dict[int, _Attempts] = {}
        # Rows the database's case-insensitive LIKE matched but whose Note is no placeholder.
        self._not_placeholders: set[int] = set()

    def attempts(self, doc_num: int) -> int:
        """Failures of ``doc_num`` counted so far (0 once it is materialised)."""
        record = self._book.get(doc_num)
        return 0 if record is None else record.count

    def run_once(self, *, should_stop: Callable[[], bool] = _never) -> Summary:
        """One pass over every placeholder row, in DocNum order."""
        summary = Summary()
        after = 0
        try:
            while not summary.stopped:
                with self._engine.connect() as conn:
                    doc_nums = queries.placeholder_doc_nums(
                        conn, after_doc_num=after, limit=self._page
                    )
                if not doc_nums:
                    break
                after = doc_nums[-1]
                for doc_num in doc_nums:
                    if should_stop():
                        summary.stopped = True
                        break
                    self._one(doc_num, summary, should_stop)
        except (DatabaseUnavailableError, DBAPIError) as exc:
            reason = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)
            summary.database_error = reason
            log.warning("materialize.database_unavailable", error=reason)
        except StoppedError:
            summary.stopped = True
        return summary

    def _one(self, doc_num: int, summary: Summary, should_stop: Callable[[], bool]) -> None:
        if not self._due(doc_num, summary):
            return
        with self._engine.connect() as conn:
            note = queries.placeholder_note(conn, doc_num=doc_num)
        if note is None:  # materialised or deleted since the page was read
            return
        source = "rawBase64"
        try:
            request = parse_note(note)
            if request is None:
                self._not_placeholders.add(doc_num)
                return
            if isinstance(request, DownloadNote):
                source = redact_url(request.url)
            extension, data = self._content(request, should_stop)
            created = self._writer.materialise(doc_num, note=note, extension=extension, data=data)
        except DatabaseUnavailableError as exc:
            self._deferred(doc_num, str(exc))
            raise
        except StoppedError:
            raise
        except Exception as exc:  # one bad row must not end the pass
            kind, reason = failure_of(exc)
            if kind is Failure.ERROR:
                log.exception("materialize.crashed", docnum=doc_num)
            self._failed(doc_num, kind, reason, summary, source=source)
        else:
            self._done(doc_num, created, summary, source=source, size=len(data))

    def _due(self, doc_num: int, summary: Summary) -> bool:
        """Is the row to be tried in this pass (not given up, not waiting for its retry)?"""
        record = self._book.get(doc_num)
        if record is not None:
            if record.gave_up:
                summary.given_up_before += 1
                return False
            if record.not_before > self._clock():
                summary.waiting += 1
                return False
        return doc_num not in self._not_placeholders

    def _content(
        self, request: RawBase64Note | DownloadNote, should_stop: Callable[[], bool]
    ) -> tuple[str, bytes]:
        """(extension, bytes) of the file a placeholder stands for."""
        if isinstance(request, DownloadNote):
            download = self._downloader.fetch(request.url, should_stop=should_stop)
            return download.extension, download.data
        data = decode_payload(request, max_bytes=self._settings.max_download_bytes)
        return request.extension, data

    def _done(
        self, doc_num: int, created: Created | None, summary: Summary, *, source: str, size: int
    ) -> None:
        self._book.pop(doc_num, None)
        if created is None or created.stored is None:
            summary.raced += 1
            self._on_outcome(RACED)
            log.info("materialize.raced", docnum=doc_num)
            return
        summary.materialised.append((doc_num, created.stored.file_name))
        self._on_outcome(MATERIALISED)
        log.info(
            "materialize.done",
            docnum=doc_num,
            patnum=created.pat_num,
            source=source,
            file_name=created.stored.file_name,
            bytes=size,
        )
        path = created.stored.path
        if self._renderer is not None and path is not None and thumbnailable(path.name):
            job = ThumbJob(
                source=path,
                dest=thumbnail_of(path),
                stamp=datetime.now(),
                pat_num=created.pat_num,
                doc_num=doc_num,
            )
            outcome = carry_out(job, self._renderer, force=True)
            summary.thumbnails[outcome] += 1
            self._on_thumbnail(outcome)

    def _failed(
        self, doc_num: int, kind: Failure, reason: str, summary: Summary, *, source: str = ""
    ) -> None:
        record = self._book.setdefault(doc_num, _Attempts())
        record.count += 1
        record.reason = f"{kind}: {reason}"
        summary.failed.append((doc_num, record.reason))
        self._on_outcome(str(kind))
        if record.count >= self._settings.max_attempts:
            record.gave_up = True
            summary.gave_up.append(doc_num)
            self._on_outcome(GAVE_UP)
            log.warning(
                "materialize.gave_up",
                docnum=doc_num,
                reason=record.reason,
                attempts=record.count,
                source=source,
            )
            return
        delay = self._backoff(record)
        log.info(
            "materialize.failed",
            docnum=doc_num,
            reason=record.reason,
            attempt=record.count,
            retry_in_s=delay,
            source=source,
        )

    def _deferred(self, doc_num: int, reason: str) -> None:
        """The database failed while this row was in hand: try it again later, uncounted."""
        record = self._book.setdefault(doc_num, _Attempts())
        record.reason = f"{DEFERRED}: {reason}"
        self._on_outcome(DEFERRED)
        self._backoff(record)

    def _backoff(self, record: _Attempts) -> float:
        # Grown from the last delay (not first * 2**n, which overflows after many failures).
        delay = self._retry_first_s if record.delay == 0 else record.delay * 2
        record.delay = min(delay, self._retry_max_s)
        record.not_before = self._clock() + record.delay
        return record.delay


# -- the command and the worker --------------------------------------------------------------


def storage_for(settings: Settings) -> Storage:
    if settings.storage == "InDatabase":
        return InDatabase()
    return LocalAtoZ(settings.atoz_path)


def run_materialize(
    settings: Settings,
    engine: Engine,
    out: TextIO,
    *,
    should_stop: Callable[[], bool] = _never,
    on_outcome: Callable[[str], None] | None = None,
) -> int:
    """``atoz-watcher materialize``: one pass, then its summary on ``out``.

    0 when every placeholder was materialised (or there were none), 1 when some failed (they
    stay in place for the next pass or the daemon). Raises DatabaseUnavailableError when the
    database failed, after printing what was done before it did.
    """
    renderer = None
    if settings.thumbnails.enabled and settings.storage == "LocalAtoZ":
        renderer = Renderer(max_pixels=settings.thumbnails.max_pixels)
    materializer = Materializer(
        engine,
        storage_for(settings),
        settings.materializer,
        lock_timeout_s=settings.scan.lock_timeout,
        renderer=renderer,
        on_outcome=on_outcome,
    )
    summary = materializer.run_once(should_stop=should_stop)
    print_materialize_summary(summary, out)
    if summary.database_error:
        raise DatabaseUnavailableError(f"database error: {summary.database_error}")
    return 1 if summary.failed else 0


def print_materialize_summary(summary: Summary, out: TextIO) -> None:
    given_up = set(summary.gave_up)
    lines = [f"materialised: {len(summary.materialised)}"]
    lines.extend(f"  DocNum {doc_num} -> {name}" for doc_num, name in summary.materialised)
    if summary.thumbnails:
        made = summary.thumbnails[Outcome.MADE]
        lines.append(f"thumbnails made: {made} of {sum(summary.thumbnails.values())}")
    lines.append(f"failed: {len(summary.failed)}")
    lines.extend(
        f"  DocNum {doc_num}: {reason}" + (" (given up)" if doc_num in given_up else "")
        for doc_num, reason in summary.failed
    )
    lines.append(f"left for later: {summary.waiting}")
    if summary.given_up_before:
        lines.append(f"given up earlier, left alone: {summary.given_up_before}")
    if summary.raced:
        lines.append(f"materialised by someone else meanwhile: {summary.raced}")
    if summary.stopped:
        lines.append("stopped early")
    if summary.database_error:
        lines.append(f"database unavailable, stopped early: {summary.database_error}")
    print("\n".join(lines), file=out)


class MaterializerWorker:
    """Runs ``materializer.run_once`` every ``interval`` seconds on a thread (0: never)."""

    def __init__(self, materializer: Materializer, *, interval: float) -> None:
        self._materializer = materializer
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._interval <= 0:
            log.info("materialize.off")
            return
        self._thread = threading.Thread(target=self._loop, name="atoz-materialize", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run a pass now (a SetByUrl just came in) instead of at the next interval."""
        self._wake.set()

    def close(self, timeout: float = JOIN_S) -> None:
        """Stop and join; a download in hand is abandoned at its next chunk (or its read
        timeout), and the row is tried again next time."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("materialize.stop_slow", waited_s=timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                summary = self._materializer.run_once(should_stop=self._stop.is_set)
            except Exception:  # the next pass tries again; the thread must live on
                log.exception("materialize.pass_crashed")
            else:
                if summary.materialised or summary.failed:
                    log.info(
                        "materialize.pass",
                        materialised=len(summary.materialised),
                        failed=len(summary.failed),
                        waiting=summary.waiting,
                    )
            # An Event, not sleep(): close() and wake() end the wait at once.
            self._wake.wait(self._interval)
            self._wake.clear()
