"""What the pages say: times, how a document came, a patient found, in an operator's words."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from atoz_watcher.db.activity import Arrival, Way
from atoz_watcher.db.ui_queries import DocumentLine, PatientHit
from atoz_watcher.documents.checks import PAT_STATUS_DELETED

# Open Dental's "no date": a year this early is no time worth showing.
_FIRST_YEAR: Final = 1880

_RESCANS: Final = {
    "startup": "at start",
    "catch-up": "catch-up",
    "safety": "safety",
    "command": "by command",
}
_INBOX_RULES: Final = {
    "cover-sheet": "cover sheet",
    "token": "PatNum in the name",
    "dicom": "DICOM patient",
    "assigned": "assigned by hand",
}
OPEN_DENTAL: Final = "Open Dental"


def when(moment: datetime | None, *, today: date | None = None) -> str:
    """``HH:MM`` today, else ``YYYY-MM-DD HH:MM`` (the server's local time, as stored)."""
    if moment is None or moment.year < _FIRST_YEAR:
        return ""
    if moment.date() == (today or datetime.now().date()):
        return moment.strftime("%H:%M")
    return moment.strftime("%Y-%m-%d %H:%M")


def how(arrival: Arrival | None) -> str:
    """How a document came, as the Today page says it."""
    if arrival is None:
        return OPEN_DENTAL
    if arrival.way is Way.FOLDER:
        return "Patient folder"
    if arrival.way is Way.RESCAN:
        detail = _RESCANS.get(arrival.detail, arrival.detail)
        return f"Rescan: {detail}" if detail else "Rescan"
    if arrival.way is Way.INBOX:
        detail = _INBOX_RULES.get(arrival.detail, arrival.detail)
        return f"Inbox: {detail}" if detail else "Inbox"
    return f"API: {arrival.detail}" if arrival.detail else "API"


def birth(value: date | None) -> str:
    """A birth date as the page shows it (the query already made Open Dental's none None)."""
    return value.isoformat() if value is not None else ""


@dataclass(frozen=True, slots=True)
class DocumentView:
    """A document as a row or a thumbnail of a page shows it."""

    doc_num: int
    pat_num: int
    patient: str
    category_num: int
    category: str
    file_name: str
    how: str
    when: str
    iso: str

    @property
    def alt(self) -> str:
        what = self.category or "document"
        return f"{what}: {self.file_name}"


def document_views(
    lines: Sequence[DocumentLine], ways: Callable[[Sequence[int]], dict[int, Arrival]] | None
) -> list[DocumentView]:
    """``lines`` as the page shows them; ``ways`` (the activity log's) says how each came."""
    found = ways([line.doc_num for line in lines]) if ways is not None and lines else {}
    today = datetime.now().date()
    return [
        DocumentView(
            doc_num=line.doc_num,
            pat_num=line.pat_num,
            patient=line.patient or f"PatNum {line.pat_num}",
            category_num=line.category_num,
            category=line.category,
            file_name=line.file_name,
            how=how(found.get(line.doc_num)),
            when=when(line.created, today=today),
            iso=line.created.isoformat() if line.created.year >= _FIRST_YEAR else "",
        )
        for line in lines
    ]


@dataclass(frozen=True, slots=True)
class HitView:
    pat_num: int
    name: str
    chart_number: str
    birth: str
    deleted: bool


def hit_views(hits: Sequence[PatientHit]) -> list[HitView]:
    return [
        HitView(
            pat_num=hit.pat_num,
            name=hit.name,
            chart_number=hit.chart_number,
            birth=birth(hit.birth_date),
            deleted=hit.status == PAT_STATUS_DELETED,
        )
        for hit in hits
    ]
