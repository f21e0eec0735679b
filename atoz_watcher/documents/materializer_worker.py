"""The daemon's materialiser thread: a pass every ``interval`` seconds, or at once when woken."""

from __future__ import annotations

import threading
from typing import Final

import structlog

from atoz_watcher.documents.materializer import Materializer

log = structlog.get_logger("atoz_watcher.materialize")

JOIN_S: Final = 5.0


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
        """Stop and join; a download in hand is abandoned when its next bytes arrive (or at
        its read timeout, or its deadline), and the row is tried again next time."""
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
