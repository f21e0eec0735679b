"""Which patient a folder in the A-to-Z tree belongs to (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from atoz_watcher.rules.layout import folder_name, letter_folder

_TRAILING_DIGITS = re.compile(r"(\d+)$", re.ASCII)


@dataclass(frozen=True, slots=True)
class PatientRow:
    """The patient columns atoz-watcher reads."""

    pat_num: int
    lname: str
    fname: str
    image_folder: str


class Unmatched(StrEnum):
    NO_PATIENT = "no-patient"
    AMBIGUOUS = "ambiguous-folder"
    WRONG_LETTER = "wrong-letter-folder"


@dataclass(frozen=True, slots=True)
class FolderMatch:
    """The patient a folder belongs to; ``adopt`` when patient.ImageFolder must be set to it."""

    patient: PatientRow
    adopt: bool


def trailing_pat_num(name: str) -> int | None:
    """The PatNum a computed folder name ends with (``SmithJohn15`` -> 15)."""
    match = _TRAILING_DIGITS.search(name)
    return int(match.group(1)) if match else None


def match_folder(
    letter: str, name: str, candidates: Iterable[PatientRow]
) -> FolderMatch | Unmatched:
    """Match the folder ``<letter>/<name>`` against the patients that could own it.

    A patient owns it when its ImageFolder is ``name``. A patient whose ImageFolder is still
    empty owns it when Open Dental would compute exactly ``name`` for it; that folder is then
    adopted. Either way the folder must sit in the letter folder Open Dental would use.
    """
    rows = list({p.pat_num: p for p in candidates}.values())
    owners = [p for p in rows if p.image_folder == name]
    if len(owners) > 1:
        return Unmatched.AMBIGUOUS
    if letter != letter_folder(name):
        return Unmatched.WRONG_LETTER
    if owners:
        return FolderMatch(patient=owners[0], adopt=False)
    pat_num = trailing_pat_num(name)
    for row in rows:
        if (
            row.pat_num == pat_num
            and not row.image_folder
            and folder_name(row.lname, row.fname, row.pat_num) == name
        ):
            return FolderMatch(patient=row, adopt=True)
    return Unmatched.NO_PATIENT
