"""What became of a file dropped in an inbox: the values the inbox returns, logs and counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeAlias


class Rule(StrEnum):
    """Which rule routed a file (the values appear in logs and metrics)."""

    COVER_SHEET = "cover-sheet"
    TOKEN = "token"  # noqa: S105 - a rule's name, not a secret
    DICOM = "dicom"
    ASSIGNED = "assigned"  # by hand: ``Inbox.assign``


class Reason(StrEnum):
    """Why a file (or a part of a scan) was not routed (logs, metrics, the sidecar)."""

    NO_ROUTE = "no-route"  # no cover sheet, no token, no DICOM PatientID
    UNKNOWN_PATIENT = "unknown-patient"
    DELETED_PATIENT = "deleted-patient"
    UNKNOWN_CHART = "unknown-chart"
    AMBIGUOUS_CHART = "ambiguous-chart"
    NO_CHART_NUMBERS = "no-chart-numbers"  # the patient table has no ChartNumber column
    UNKNOWN_CATEGORY = "unknown-category"
    AMBIGUOUS_CATEGORY = "ambiguous-category"
    EMPTY_COVER_SHEET = "empty-cover-sheet"  # a cover sheet with no pages after it
    CONFLICTING_CODES = "conflicting-codes"  # a page with codes of different patients
    BEFORE_FIRST_COVER = "before-first-cover"  # pages no cover sheet and no other rule routes
    UNREADABLE_SCAN = "unreadable-scan"  # a PDF or TIFF whose pages cannot be read
    AMBIGUOUS_TOKEN = "ambiguous-token"  # noqa: S105
    INVALID_TOKEN = "invalid-token"  # noqa: S105
    BAD_DICOM_ID = "dicom-id-not-a-patnum"
    UNREADABLE_DICOM = "unreadable-dicom"
    UNUSABLE_NAME = "unusable-name"  # a name no database column can hold


@dataclass(frozen=True, slots=True)
class Routed:
    """Filed: ``doc_nums`` in the order of the parts (one unless a batch was split).
    ``unmatched`` parts of a split batch went to ``_Unmatched/`` (their reasons)."""

    source: str
    rule: Rule
    doc_nums: tuple[int, ...]
    unmatched: tuple[Reason, ...] = ()

    @property
    def parts(self) -> int:
        return len(self.doc_nums) + len(self.unmatched)


@dataclass(frozen=True, slots=True)
class Unmatched:
    """Moved to ``<inbox>/_Unmatched/<name>`` with ``reason``."""

    source: str
    reason: Reason
    name: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Same content as a file filed from this inbox within keep_days: moved to
    ``<inbox>/_Duplicates/<name>``, not filed again."""

    source: str
    name: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """Not an inbox file: gone, not a regular file, hidden, or inside an ``_`` folder."""

    source: str
    why: str


Outcome: TypeAlias = Routed | Unmatched | Duplicate | Skipped


@dataclass(frozen=True, slots=True)
class UnmatchedFile:
    """A file waiting in ``_Unmatched/`` for ``Inbox.assign``."""

    path: Path
    reason: Reason | str
    detail: str
    when: datetime | None  # when it was moved there (None: no sidecar, a file put there by hand)
    original: str  # the name it arrived under
    pages: tuple[int, ...] | None  # 1-based pages of the original, for a part of a split batch


class OutcomeKind(StrEnum):
    ROUTED = "routed"
    SPLIT = "split"
    UNMATCHED = "unmatched"
    DUPLICATE = "duplicate"


# The metrics hook: ``on_outcome(kind, rule_or_reason)``, e.g. ("routed", "token"),
# ("split", "cover-sheet"), ("unmatched", "deleted-patient"), ("duplicate", "").
OnOutcome: TypeAlias = Callable[[OutcomeKind, str], None]


def no_outcome(kind: OutcomeKind, label: str) -> None:
    del kind, label


class InboxError(Exception):
    """A request the inbox refuses (``assign`` to a deleted patient, a file not in an inbox)."""
