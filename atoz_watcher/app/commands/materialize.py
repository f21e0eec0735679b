"""``atoz-watcher materialize``: one pass of the materialiser, then its summary."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import Engine

from atoz_watcher.app.commands.common import exit_on_signals, require_tables
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.settings import Settings
from atoz_watcher.errors import DatabaseUnavailableError
from atoz_watcher.imaging.jobs import Outcome

if TYPE_CHECKING:
    from atoz_watcher.documents.materializer import Summary


def _never() -> bool:
    return False


def run_materialize_once(settings: Settings, engine: Engine, out: TextIO) -> int:
    """``atoz-watcher materialize``: one pass; exit 1 when some placeholder failed."""
    require_tables(engine)
    stop = threading.Event()
    with exit_on_signals(stop.set):
        return run_materialize(
            Components.from_settings(settings, engine, inline_thumbnails=True),
            out,
            should_stop=stop.is_set,
        )


def run_materialize(
    components: Components, out: TextIO, *, should_stop: Callable[[], bool] = _never
) -> int:
    """``atoz-watcher materialize``: one pass, then its summary on ``out``.

    0 when every placeholder was materialised (or there were none), 1 when some failed (they
    stay in place for the next pass or the daemon). Raises DatabaseUnavailableError when the
    database failed, after printing what was done before it did.
    """
    summary = components.materializer.run_once(should_stop=should_stop)
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
