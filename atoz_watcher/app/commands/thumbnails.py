"""``atoz-watcher thumbnails``: missing or stale thumbnails of every document."""

from __future__ import annotations

import sys
import threading
from contextlib import ExitStack
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import Engine

from atoz_watcher.app.commands.common import (
    EXIT_OK,
    ProgressBar,
    exit_on_signals,
    patient_folder,
    require_tables,
)
from atoz_watcher.app.reports import ThumbnailReport
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.settings import Settings
from atoz_watcher.errors import ConfigError

# The heavy parts are imported in the command that runs them (see the note in app.cli).
if TYPE_CHECKING:
    from atoz_watcher.imaging.backfill import BackfillSummary


def run_thumbnails(
    settings: Settings,
    engine: Engine,
    *,
    pat_num: int | None,
    force: bool,
    out: TextIO,
    per_file: bool = True,
) -> int:
    if settings.storage == "InDatabase":
        raise ConfigError(
            "storage: InDatabase keeps files in document.RawBase64; thumbnails are files in "
            "the A-to-Z folder's Thumbnails/ subfolders, made for LocalAtoZ only"
        )
    require_tables(engine)
    if pat_num is not None:
        patient_folder(engine, settings.atoz_path, pat_num)
    from atoz_watcher.imaging.backfill import Backfill  # noqa: PLC0415 - see the note at the top
    from atoz_watcher.imaging.queue import default_workers  # noqa: PLC0415

    backfill = Backfill(
        engine,
        Components.from_settings(settings, engine).renderer,
        settings.atoz_path,
        workers=default_workers(settings.thumbnails.workers),
    )
    stop = threading.Event()
    report = ThumbnailReport(out) if per_file else None
    with ExitStack() as stack:
        progress = None
        if sys.stderr.isatty():
            bar = ProgressBar(sys.stderr, label="documents")
            stack.callback(bar.close)
            progress = bar.update
            if report is not None:
                report.before_line = bar.clear
        stack.enter_context(exit_on_signals(stop.set))
        summary = backfill.run(
            pat_num=pat_num,
            force=force,
            progress=progress,
            report=report,
            should_stop=stop.is_set,
        )
    print_thumbnail_summary(summary, out, stopped=stop.is_set())
    return EXIT_OK


def print_thumbnail_summary(summary: BackfillSummary, out: TextIO, *, stopped: bool) -> None:
    from atoz_watcher.imaging.jobs import Outcome  # noqa: PLC0415 - see the note at the top

    outcomes = summary.outcomes
    lines = [
        f"documents: {summary.documents}" + (" (stopped early)" if stopped else ""),
        f"thumbnails made: {outcomes[Outcome.MADE]}",
        f"already fresh: {outcomes[Outcome.FRESH]}",
        f"no thumbnail (not an image): {summary.not_images}",
        f"file missing: {outcomes[Outcome.MISSING]}",
        f"failed: {outcomes[Outcome.FAILED]}",
    ]
    lines.extend(f"  {path}" for path in summary.failed)
    if summary.unsafe:
        lines.append(f"unsafe names, skipped: {len(summary.unsafe)}")
        lines.extend(f"  {reason}" for reason in summary.unsafe)
    print("\n".join(lines), file=out)
