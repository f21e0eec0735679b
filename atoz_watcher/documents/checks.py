"""What a new document needs before anything is stored: a patient who exists and is not
deleted, and an image category (the one asked for, or the first visible one)."""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection

from atoz_watcher.db import queries
from atoz_watcher.errors import AtozError, NoImageCategoryError
from atoz_watcher.rules.matching import PatientRow
from atoz_watcher.rules.naming import first_visible

# patient.PatStatus of a deleted patient (Open Dental's PatientStatus.Deleted).
PAT_STATUS_DELETED: Final = 4


class PatientNotFoundError(AtozError):
    def __init__(self, pat_num: int) -> None:
        self.pat_num = pat_num
        super().__init__("Patient not found")


class PatientDeletedError(AtozError):
    """Open Dental's deleted patients take no new documents."""

    def __init__(self, pat_num: int) -> None:
        self.pat_num = pat_num
        super().__init__("Patient is deleted; documents cannot be added to a deleted patient")


class CategoryError(AtozError):
    """DocCategory is not an image category (a ``definition`` with Category=18)."""

    def __init__(self, def_num: int) -> None:
        self.def_num = def_num
        super().__init__(f"DocCategory {def_num} is not an image category")


def patient_and_category(
    conn: Connection, *, pat_num: int, category: int | None
) -> tuple[PatientRow, int]:
    """The patient a new document goes to and the category it is filed under (``category``,
    or the first visible image category when it is None).

    ``PatientNotFoundError`` for no such patient, ``PatientDeletedError`` for a deleted one,
    ``CategoryError`` for a category that is no image category, ``NoImageCategoryError`` when
    none was asked for and there is none to take.
    """
    patient = queries.patient(conn, pat_num=pat_num)
    status = queries.pat_status(conn, pat_num=pat_num)
    if patient is None or status is None:
        raise PatientNotFoundError(pat_num)
    if status == PAT_STATUS_DELETED:
        raise PatientDeletedError(pat_num)
    categories = queries.image_categories(conn)
    if category is None:
        default = first_visible(categories)
        if default is None:
            raise NoImageCategoryError
        return patient, default.def_num
    if not any(c.def_num == category for c in categories):
        raise CategoryError(category)
    return patient, category
