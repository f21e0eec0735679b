"""What the one-shot commands print per file: the lines of ``rescan`` and ``thumbnails``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from atoz_watcher.ingest.registrar import Plan, Registered, Skipped
from atoz_watcher.ingest.rescan import TOO_RECENT
from atoz_watcher.rules.naming import Skip
from atoz_watcher.rules.wording import plural

if TYPE_CHECKING:  # thumbnailing brings Pillow, which a rescan's report does not need
    from atoz_watcher.imaging.jobs import Outcome, ThumbJob

# Never documents, in every folder (Open Dental's own rule): counted in the summary, not listed.
LITTER = frozenset({Skip.HIDDEN, Skip.THUMBS_DB})


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Deferred:
    """A file a rescan left alone because it was written to a moment ago."""

    path: Path
    # When a rescan takes it (its last change plus the quiet period), Unix time.
    ready_at: float


@dataclass
class RescanReport:
    """Called with every plan, registration and refusal of a rescan (``Rescanner(report=)``).

    A dry run's plan is always printed (that is what a dry run is for); registrations and
    refusals only with ``per_file``, litter (Thumbs.db, hidden files) never. Deferred files
    are kept for the summary either way. Paths are printed whole, as a user would paste them.
    """

    out: TextIO
    categories: Mapping[int, str]
    per_file: bool
    min_age_s: float
    # Called before each line (clears a progress bar sharing the terminal).
    before_line: Callable[[], None] = _nothing
    clock: Callable[[], float] = time.time
    deferred: list[Deferred] = field(default_factory=list)

    def __call__(self, result: Plan | Registered | Skipped) -> None:
        if isinstance(result, Plan):
            self._line(f"would register {self._describe(result)}")
        elif isinstance(result, Registered):
            doc = f", DocNum {result.doc_num}" if result.doc_num is not None else ""
            if self.per_file:
                self._line(f"registered {self._describe(result.plan)}{doc}")
        elif result.reason == TOO_RECENT:
            self.deferred.append(Deferred(result.candidate.path, self._ready_at(result)))
        elif self.per_file and result.reason not in LITTER:
            detail = f" ({result.detail})" if result.detail else ""
            self._line(f"skipped {result.candidate.path}: {result.reason}{detail}")

    def _describe(self, plan: Plan) -> str:
        category = self.categories.get(plan.category, f"DefNum {plan.category}")
        final = plan.candidate.folder / plan.final_name
        source = f" (was {plan.candidate.name})" if plan.renames else ""
        return f"{final}{source}: patient {plan.candidate.pat_num}, category {category}"

    def _ready_at(self, skipped: Skipped) -> float:
        try:
            modified = skipped.candidate.path.stat(follow_symlinks=False).st_mtime
        except OSError:
            modified = self.clock()
        return modified + self.min_age_s

    def _line(self, text: str) -> None:
        self.before_line()
        print(text, file=self.out, flush=True)

    def deferred_lines(self) -> list[str]:
        """The summary's naming of every deferred file, and when a rescan will take it."""
        if not self.deferred:
            return []
        now = self.clock()
        lines = [
            f"left for later, perhaps still being written: {plural(len(self.deferred), 'file')}"
        ]
        for item in self.deferred:
            if item.ready_at <= now:
                when = "a rescan now takes it"
            else:
                at = datetime.fromtimestamp(item.ready_at).strftime("%H:%M:%S")
                when = f"a rescan from {at} on takes it"
            lines.append(f"  {item.path}: {when} (a running service takes it by itself)")
        return lines


@dataclass
class ThumbnailReport:
    """One line per thumbnail made, or per document that got none (``Backfill(report=)``)."""

    out: TextIO
    before_line: Callable[[], None] = _nothing

    def __call__(self, job: ThumbJob, outcome: Outcome) -> None:
        from atoz_watcher.imaging.jobs import Outcome  # noqa: PLC0415 - see TYPE_CHECKING

        docnum = f"DocNum {job.doc_num}: " if job.doc_num is not None else ""
        if outcome is Outcome.MADE:
            text = f"made {job.dest}"
        elif outcome is Outcome.FAILED:
            text = f"failed {docnum}{job.source}"
        elif outcome is Outcome.MISSING:
            text = f"file missing {docnum}{job.source}"
        else:
            return  # fresh: nothing done
        self.before_line()
        print(text, file=self.out, flush=True)
