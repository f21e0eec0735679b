"""Build the thumbnails that are missing or stale, for registered documents (CLI and start)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy import Engine

from atoz_watcher.db.queries import DocumentFile, count_document_files, document_files
from atoz_watcher.imaging.jobs import Outcome, ThumbJob, carry_out, job_for_document
from atoz_watcher.imaging.render import Renderer

log = structlog.get_logger("atoz_watcher.thumbnails")

PAGE = 500
# Backfill threads run at this niceness, so new files' registrations and thumbnails come first.
LOW_PRIORITY = 10


@dataclass
class BackfillSummary:
    documents: int = 0  # documents with a FileName looked at
    not_images: int = 0  # documents that get no thumbnail (not an image, PDF or DICOM)
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    unsafe: list[str] = field(default_factory=list)  # rows whose names would leave the root
    failed: list[Path] = field(default_factory=list)  # files that got no thumbnail


def lower_thread_priority() -> None:
    """Make the calling thread nicer (Linux: niceness is per thread). Best effort."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOW_PRIORITY)
    except (OSError, AttributeError):
        return


def _never() -> bool:
    return False


class Backfill:
    """Walks the ``document`` table in short pages and renders what is missing or stale."""

    def __init__(
        self,
        engine: Engine,
        renderer: Renderer,
        root: Path,
        *,
        workers: int,
        low_priority: bool = False,
        page: int = PAGE,
    ) -> None:
        self._engine = engine
        self._renderer = renderer
        self._root = root
        self._workers = max(1, workers)
        self._low_priority = low_priority
        self._page = page

    def run(
        self,
        *,
        pat_num: int | None = None,
        changed_since: datetime | None = None,
        force: bool = False,
        progress: Callable[[int, int], None] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        report: Callable[[ThumbJob, Outcome], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> BackfillSummary:
        summary = BackfillSummary()
        with self._engine.connect() as conn:
            total = count_document_files(conn, pat_num=pat_num, changed_since=changed_since)
        after = 0
        initializer = lower_thread_priority if self._low_priority else None
        with ThreadPoolExecutor(
            self._workers, thread_name_prefix="atoz-thumbs-backfill", initializer=initializer
        ) as pool:
            while not (should_stop and should_stop()):
                with self._engine.connect() as conn:
                    documents = document_files(
                        conn,
                        after_doc_num=after,
                        limit=self._page,
                        pat_num=pat_num,
                        changed_since=changed_since,
                    )
                if not documents:
                    break
                after = documents[-1].doc_num
                jobs = self._jobs(documents, summary)
                outcomes = pool.map(lambda job: carry_out(job, self._renderer, force=force), jobs)
                for job, outcome in zip(jobs, outcomes, strict=True):
                    summary.outcomes[outcome] += 1
                    if outcome is Outcome.FAILED:
                        summary.failed.append(job.source)
                    if on_outcome is not None:
                        on_outcome(outcome)
                    if report is not None:
                        report(job, outcome)
                summary.documents += len(documents)
                if progress is not None:
                    progress(min(summary.documents, total), total)
        return summary

    def _jobs(self, documents: Sequence[DocumentFile], summary: BackfillSummary) -> list[ThumbJob]:
        """The thumbnails to build for a page of documents; the others counted or reported."""
        jobs: list[ThumbJob] = []
        for document in documents:
            job = job_for_document(self._root, document)
            if job is None:
                summary.not_images += 1
            elif isinstance(job, str):
                log.warning(
                    "thumbnail.unsafe",
                    patnum=document.pat_num,
                    docnum=document.doc_num,
                    reason=job,
                )
                summary.unsafe.append(job)
            else:
                jobs.append(job)
        return jobs
