"""The thumbnail queue: rendering threads that every stored file's job is handed to.

Registration, Upload, UploadSftp and the materialiser each hand their jobs to ``submit``
(through the ``OnStored`` callback they were built with); the threads run them off the thread
that stored the file, after registration. A one-shot command, which prints each outcome, renders
its jobs at once with ``RenderNow`` instead.
"""

from __future__ import annotations

import gc
import os
import queue
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from atoz_watcher.imaging.backfill import Backfill, lower_thread_priority
from atoz_watcher.imaging.jobs import Outcome, ThumbJob, carry_out
from atoz_watcher.imaging.render import Renderer
from atoz_watcher.system.memory import release_free_memory

if TYPE_CHECKING:  # the API served on its own and one-shot commands load no prometheus_client
    from atoz_watcher.system.metrics import Metrics

log = structlog.get_logger("atoz_watcher.thumbnails")

JOIN_S = 3.0  # per thread, at stop: one render takes milliseconds, a huge one under a second


def default_workers(configured: int) -> int:
    """``configured`` threads, or one per core for 0."""
    return configured or os.cpu_count() or 1


class ThumbnailWorker:
    """Renders queued thumbnails on ``workers`` threads; ``submit`` never blocks.

    ``metrics`` counts each outcome and the queue's depth (None: the API served on its own,
    which has no metrics endpoint)."""

    def __init__(
        self,
        renderer: Renderer,
        *,
        workers: int,
        metrics: Metrics | None = None,
        backfill: Backfill | None = None,
        backfill_days: float = 0.0,
    ) -> None:
        self._backfill_days = backfill_days
        self._renderer = renderer
        self._workers = max(1, workers)
        self._metrics = metrics
        self._backfill = backfill
        self._jobs: queue.SimpleQueue[ThumbJob | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        # Cleared while the daemon registers: rendering threads hold the interpreter lock for
        # their Python parts, and a burst's rows come before its thumbnails.
        self._open = threading.Event()
        self._open.set()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def start(self) -> None:
        for number in range(self._workers):
            thread = threading.Thread(target=self._serve, name=f"atoz-thumbs-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self._backfill is not None:
            thread = threading.Thread(
                target=self._run_backfill,
                args=(self._backfill,),
                name="atoz-thumbs-backfill",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def submit(self, job: ThumbJob) -> None:
        with self._lock:
            self._busy += 1
        self._jobs.put(job)
        self._depth()

    @property
    def depth(self) -> int:
        """Thumbnails waiting to be rendered."""
        return self._jobs.qsize()

    def hold(self) -> None:
        """Pause before the next job (the job in hand finishes): registration is running."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted job is done; False on timeout (for tests and tools)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def close(self) -> None:
        """Stop after the jobs in hand; jobs still queued are left (the next start's backfill
        builds them)."""
        self._stop.set()
        self._open.set()
        for _ in range(self._workers):
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(JOIN_S)
        self._threads.clear()

    def _serve(self) -> None:
        # Registration comes first: a burst's thumbnails must not slow its rows down.
        lower_thread_priority()
        while True:
            job = self._jobs.get()
            self._open.wait()
            if job is None or self._stop.is_set():
                return
            try:
                self._count(carry_out(job, self._renderer))
            except Exception:  # one bad job must not end the thread
                self._count(Outcome.FAILED)
                log.exception(
                    "thumbnail.crashed",
                    path=str(job.source),
                    patnum=job.pat_num,
                    docnum=job.doc_num,
                )
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()
                self._depth()

    def _count(self, outcome: Outcome) -> None:
        if self._metrics is not None:
            self._metrics.thumbnail(outcome)

    def _depth(self) -> None:
        if self._metrics is not None:
            self._metrics.set_thumbnail_queue(self._jobs.qsize())

    def _run_backfill(self, backfill: Backfill) -> None:
        try:
            summary = backfill.run(
                changed_since=datetime.now() - timedelta(days=self._backfill_days),
                on_outcome=self._count,
                should_stop=self._stop.is_set,
            )
        except Exception as exc:  # noqa: BLE001 - best effort: the next start tries again
            log.warning("thumbnail.backfill_failed", error=str(exc))
            return
        # A backfill over a large table leaves freed row buffers and image memory with the C
        # allocator; give it back, as a whole-tree rescan does.
        gc.collect()
        release_free_memory()
        log.info(
            "thumbnail.backfill_finished",
            documents=summary.documents,
            **{str(outcome): count for outcome, count in summary.outcomes.items()},
        )


class RenderNow:
    """The jobs of a one-shot command, rendered on the caller's thread: it reports each outcome
    (``atoz-watcher materialize`` prints how many thumbnails it made)."""

    def __init__(
        self, renderer: Renderer, *, on_outcome: Callable[[Outcome], None] | None = None
    ) -> None:
        self._renderer = renderer
        self._on_outcome = on_outcome

    def __call__(self, job: ThumbJob) -> Outcome:
        outcome = carry_out(job, self._renderer)
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome
