"""Placeholder rows turned into files, in place: the materialiser.

Open Dental's API does not store an Upload or a SetByUrl file at once: it writes a ``document``
row with no FileName and a Note of ``_rawBase64_:`` + extension + ``_`` + base64, or
``_download_:`` + URL, and makes the file when a user opens the document. We make it here, for
rows written by us or by anyone else in the same database, and keep the DocNum: the file is
stored as Upload stores it (Open Dental's generated name in the patient folder, or
``document.RawBase64``), FileName set, Note cleared, and its thumbnail job handed on.

The Notes are read by ``placeholders``; downloads are made by ``download`` (httpx, netguard),
imported when the first ``_download_:`` Note is seen: most practices never get one, and httpx
alone would cost the daemon about 18 MB.

A row that fails (refused URL, HTTP error, timeout, too large, bad base64, a full disk) is tried
again after a growing delay; after ``max_attempts`` failures it is left as it is, with one
``materialize.gave_up`` warning and an outcome for the metric. The row is never deleted. The
book of failures lives in memory: a restart gives every row its attempts again. A database
outage ends the pass and does not count against a row (the row is not at fault).

Logs never hold a payload, nor a URL's user name, password or query string (signed URLs carry
their credentials there).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from atoz_watcher.config.sections import MaterializerSettings
from atoz_watcher.db import queries
from atoz_watcher.db.activity import NO_RECORD, Problem, Recorder
from atoz_watcher.documents.checks import PatientNotFoundError
from atoz_watcher.documents.writer import Created, DocumentWriter
from atoz_watcher.errors import DatabaseUnavailableError
from atoz_watcher.imaging.jobs import OnStored, Outcome, no_thumbnails
from atoz_watcher.rules.notes import (
    DownloadNote,
    Failure,
    MaterializeError,
    RawBase64Note,
    StoppedError,
    decode_payload,
    parse_note,
    redact_url,
)
from atoz_watcher.storage import Storage
from atoz_watcher.system.backoff import next_delay

if TYPE_CHECKING:  # at run time both are imported with the first download (httpx)
    from atoz_watcher.net.download import Downloader
    from atoz_watcher.net.guard import Resolver

log = structlog.get_logger("atoz_watcher.materialize")

# Placeholder DocNums read per query; each row's Note (a whole file for an Upload) is then read
# on its own, so memory holds one file at a time.
PAGE: Final = 20
# Backoff between attempts at a failing row: 1 min, 2, 4, 8, ... at most an hour.
RETRY_FIRST_S: Final = 60.0
RETRY_MAX_S: Final = 3600.0

MATERIALISED: Final = "materialised"
GAVE_UP: Final = "gave_up"
RACED: Final = "raced"  # someone (Open Dental, another atoz-watcher) materialised it first
DEFERRED: Final = "database"  # the database failed: tried again, not counted against the row


def _never() -> bool:
    return False


def _ignore(outcome: object) -> None:
    del outcome


def new_downloader(settings: MaterializerSettings, resolver: Resolver | None) -> Downloader:
    """A Downloader for ``settings``; the first call imports httpx and netguard."""
    from atoz_watcher.net.download import downloader_for  # noqa: PLC0415 - see the note at the top

    return downloader_for(settings, resolver=resolver)


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
    # Thumbnails rendered during the pass (a one-shot command); queued ones are counted where
    # they run.
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
        on_stored: OnStored = no_thumbnails,
        on_outcome: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        resolver: Resolver | None = None,  # None: the system's (netguard.system_resolver)
        page: int = PAGE,
        retry_first_s: float = RETRY_FIRST_S,
        retry_max_s: float = RETRY_MAX_S,
        activity: Recorder = NO_RECORD,
    ) -> None:
        self._engine = engine
        self._activity = activity
        self._writer = DocumentWriter(engine, storage, lock_timeout_s=lock_timeout_s)
        self._settings = settings
        self._on_stored = on_stored
        self._on_outcome = on_outcome if on_outcome is not None else _ignore
        self._clock = clock
        self._resolver = resolver
        self._downloader: Downloader | None = None  # made by the first download note
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
            if self._downloader is None:
                self._downloader = new_downloader(self._settings, self._resolver)
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
        job = created.thumbnail_job(stamp=datetime.now())
        if job is not None:
            outcome = self._on_stored(job)
            if outcome is not None:  # rendered at once (a one-shot command), not queued
                summary.thumbnails[outcome] += 1

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
            # The kind only: a download's error may carry its URL, and a URL a token.
            words = (
                f"its file could not be stored after {record.count} attempts ({kind}); "
                "the row stays a placeholder"
            )
            self._activity.problem(Problem("materialize", words, f"DocNum {doc_num}"))
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
        record.delay = next_delay(
            record.delay, first=self._retry_first_s, maximum=self._retry_max_s
        )
        record.not_before = self._clock() + record.delay
        return record.delay
