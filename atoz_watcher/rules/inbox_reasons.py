"""Why an inbox file is unmatched, in an operator's words (the command's list, the page).

The sidecar keeps the code (``inbox.outcomes.Reason``'s values); these are what people read.
"""

from __future__ import annotations

from typing import Final

REASON_WORDS: Final = {
    "no-route": "no cover sheet, no PatNum in the name, no DICOM patient",
    "unknown-patient": "no patient has this PatNum",
    "deleted-patient": "the patient is deleted",
    "unknown-chart": "no patient has this chart number",
    "ambiguous-chart": "several patients share this chart number",
    "no-chart-numbers": "the database has no chart numbers (patient.ChartNumber)",
    "unknown-category": "no visible image category by that number or name",
    "ambiguous-category": "several image categories share that name",
    "empty-cover-sheet": "a cover sheet with no pages after it",
    "conflicting-codes": "a page carries cover codes of different patients",
    "before-first-cover": "pages before the first cover sheet, and nothing else routes them",
    "unreadable-scan": "the pages of this PDF or TIFF cannot be read",
    "ambiguous-token": "the name matches the PatNum pattern more than once",
    "invalid-token": "the PatNum in the name is not a usable number",
    "dicom-id-not-a-patnum": "the DICOM PatientID is not a PatNum",
    "unreadable-dicom": "the DICOM file cannot be read",
    "unusable-name": "a file name Open Dental's database cannot hold",
    "duplicate": "the same content was filed from this inbox already",
}


def reason_words(reason: str) -> str:
    """``reason`` (a Reason value, or what a sidecar held) in an operator's words."""
    return REASON_WORDS.get(str(reason), str(reason))
