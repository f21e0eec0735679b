"""What a new document needs before anything is stored: a patient who exists and is not
deleted, and an image category (the one asked for, or the first visible one)."""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection

from atoz_watcher.db import queries
from atoz_watcher.errors import AtozError, NoImageCategoryError, NoSuchCategoryError
from atoz_watcher.rules.matching import PatientRow
from atoz_watcher.rules.naming import ImageCategory, first_visible

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
    found = queries.patient_and_status(conn, pat_num=pat_num)
    if found is None:
        raise PatientNotFoundError(pat_num)
    patient, status = found
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


def visible_category(conn: Connection, given: str) -> ImageCategory:
    """The visible image category ``given`` (a DefNum, or a name in any case) names; the
    cover sheet's code names it (the command's ``--category``, the page's choice).
    NoSuchCategoryError, saying why, for none, a hidden one or a name several share."""
    text = given.strip()
    if not text:
        raise NoSuchCategoryError(repr(given), "give a DefNum or an image category's name")
    key: int | str = int(text) if text.isascii() and text.isdigit() else text
    found = queries.image_category_by(conn, key=key)
    visible = [c for c in found if not c.is_hidden]
    what = f"DefNum {key}" if isinstance(key, int) else f"the name {text!r}"
    if len(visible) == 1:
        return visible[0]
    if len(visible) > 1:
        numbers = ", ".join(str(c.def_num) for c in visible)
        raise NoSuchCategoryError(
            given, f"{what} is shared by the image categories {numbers}; give the DefNum"
        )
    if found:
        raise NoSuchCategoryError(given, f"{what} is a hidden image category")
    raise NoSuchCategoryError(given, f"no image category (Category 18) has {what}")
