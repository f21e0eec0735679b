"""``atoz-watcher rescan``: register what the tree holds, then a summary."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import TextIO

from sqlalchemy import Engine

from atoz_watcher.app.commands.common import EXIT_OK, ProgressBar, patient_folder, require_tables
from atoz_watcher.app.reports import RescanReport
from atoz_watcher.app.results import Activity, Results
from atoz_watcher.app.wiring import Components, ignore_rules
from atoz_watcher.config.settings import Settings
from atoz_watcher.db import queries
from atoz_watcher.db.activity import Way
from atoz_watcher.errors import ConfigError
from atoz_watcher.ingest.registrar import Plan, Registered, Skipped
from atoz_watcher.ingest.rescan import Rescanner, Summary


def run_rescan(
    settings: Settings,
    engine: Engine,
    *,
    pat_num: int | None,
    dry_run: bool,
    out: TextIO,
    per_file: bool = True,
) -> int:
    if settings.storage == "InDatabase":
        raise ConfigError(
            "storage: InDatabase keeps files in document.RawBase64; there is no A-to-Z folder "
            'to import from (set storage = "LocalAtoZ" if Open Dental uses the folder)'
        )
    require_tables(engine)
    root = settings.atoz_path
    folder = None if pat_num is None else patient_folder(engine, root, pat_num)
    with engine.connect() as conn:
        categories = {c.def_num: c.name for c in queries.image_categories(conn)}
    components = Components.from_settings(settings, engine)
    registrar = components.registrar
    min_age_s = settings.watcher.open_settle_seconds
    report = RescanReport(out, categories, per_file=per_file, min_age_s=min_age_s)
    # The documents this command registers came by a rescan "command" (the activity log).
    activity = Activity(components.activity, root)
    recorded = Results(activity)

    def reported(result: Plan | Registered | Skipped) -> None:
        report(result)
        recorded(result)

    with ExitStack() as stack:
        stack.enter_context(activity.arriving(Way.RESCAN, "command"))
        progress = None
        if sys.stderr.isatty():
            bar = ProgressBar(sys.stderr)
            stack.callback(bar.close)
            progress = bar.update
            report.before_line = bar.clear
        scanner = Rescanner(
            engine,
            registrar,
            root,
            batch_size=settings.scan.batch_size,
            progress=progress,
            report=reported,
            ignore=ignore_rules(settings),
            # A file a scanner is still writing is left for the next rescan (or the daemon).
            min_age_s=min_age_s,
            keep=False,  # one run: FileNames read a letter folder at a time
        )
        summary = scanner.run(pat_num=pat_num, dry_run=dry_run)
    print_summary(summary, out, dry_run=dry_run)
    lines = report.deferred_lines()
    if folder is not None and summary.folders == 0:
        lines.append(f"patient {pat_num} has no folder yet: {folder} does not exist")
    if lines:
        print("\n".join(lines), file=out)
    return EXIT_OK


def print_summary(summary: Summary, out: TextIO, *, dry_run: bool) -> None:
    verb = "would register" if dry_run else "registered"
    lines = [
        f"folders: {summary.folders}",
        f"files seen: {summary.files_seen}",
        f"{verb}: {summary.registered}",
        f"already registered: {summary.already_known}",
    ]
    skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.skipped.items()))
    lines.append(f"skipped: {sum(summary.skipped.values())}" + (f" ({skipped})" if skipped else ""))
    if summary.adopted:
        adopted = "would adopt" if dry_run else "adopted"
        lines.append(f"folders {adopted}: {len(summary.adopted)}")
    lines.append(f"unmatched folders: {len(summary.unmatched)}")
    lines.extend(f"  {folder} ({reason})" for folder, reason in summary.unmatched)
    print("\n".join(lines), file=out)
