"""Rows as the seed's JSON: field names, dates, filePath, ImgType by name (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from atoz_watcher.db.models import IMG_TYPE_NAMES
from atoz_watcher.db.queries import DocumentEntry, Listed, ListedRow
from atoz_watcher.rules.dates import format_date
from atoz_watcher.rules.layout import folder_name, letter_folder
from atoz_watcher.rules.naming import plain
from atoz_watcher.rules.notes import RAW_BASE64_NOTE

_SAFE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}", re.ASCII)

Json = dict[str, Any]


def visible_note(note: str) -> str:
    """The Note a client sees. A ``_rawBase64_:`` Note holds the whole file: only its prefix
    and extension are shown (``_rawBase64_:.jpg``), never the payload."""
    if not note.startswith(RAW_BASE64_NOTE):
        return note
    extension = note[len(RAW_BASE64_NOTE) :].partition("_")[0]
    return RAW_BASE64_NOTE + (extension if _SAFE_EXTENSION.fullmatch(extension) else "")


def img_type_name(value: int) -> str:
    return IMG_TYPE_NAMES[value] if 0 <= value < len(IMG_TYPE_NAMES) else str(value)


@dataclass(frozen=True, slots=True)
class Patient:
    pat_num: int
    image_folder: str
    lname: str
    fname: str


@dataclass(frozen=True, slots=True)
class FilePaths:
    """How filePath shows a file: ``root`` + Letter + ImageFolder + FileName, joined with
    ``separator``; ``root`` None for InDatabase (every filePath blank)."""

    root: str | None
    separator: str

    def folder(self, patient: Patient) -> str | None:
        """What comes before the FileName in the patient's filePaths (ending with the
        separator); None for InDatabase."""
        if self.root is None:
            return None
        folder = patient.image_folder or folder_name(patient.lname, patient.fname, patient.pat_num)
        if not plain(folder):
            return None  # a folder that could lead out of the root is never shown as a path
        root = self.root.rstrip(self.separator)  # "" for "/": the join starts with "/"
        return self.separator.join((root, letter_folder(folder), folder, ""))


def file_path(folder: str | None, file_name: str) -> str:
    """A document's filePath from ``FilePaths.folder``: blank for InDatabase, for no file, and
    for a FileName that is not a plain name (it could lead out of its folder)."""
    return "" if folder is None or not plain(file_name) else folder + file_name


def document_json(
    entry: DocumentEntry,
    *,
    folder: str | None,
    categories: Mapping[int, str],
    mount_num: int,
    server_time: str,
) -> Json:
    """One document as the seed shows it, plus PatNum, FileName and ImgType; ``folder`` is its
    patient's ``FilePaths.folder``."""
    return {
        "DocNum": entry.doc_num,
        "MountNum": mount_num,
        "PatNum": entry.pat_num,
        "FileName": entry.file_name,
        "filePath": file_path(folder, entry.file_name),
        "Description": entry.description,
        "Note": visible_note(entry.note),
        "DateCreated": format_date(entry.date_created),
        "docCategory": categories.get(entry.doc_category, ""),
        "DocCategory": entry.doc_category,
        "ImgType": img_type_name(entry.img_type),
        "ToothNumbers": entry.tooth_numbers,
        "DateTStamp": format_date(entry.date_tstamp),
        "serverDateTime": server_time,
    }


def page_json(
    rows: Iterable[ListedRow], *, patient: Patient, paths: FilePaths, server_time: str
) -> list[Json]:
    """A page of the patient's list (``queries.list_page``) as the seed shows it: a document
    as ``document_json`` does, listed under a mount with that MountNum (0 on its own); a
    mount with DocNum 0 and no filePath, FileName, ImgType, ToothNumbers or DateTStamp."""
    folder = paths.folder(patient)  # once: every document of the page is in it
    pat_num = patient.pat_num  # every line's: the page is read by PatNum
    page: list[Json] = []
    for row in rows:
        if row.kind == Listed.MOUNT:
            page.append(
                {
                    "DocNum": 0,
                    "MountNum": row.num,
                    "PatNum": pat_num,
                    "FileName": "",
                    "filePath": "",
                    "Description": row.description,
                    "Note": row.note,
                    "DateCreated": row.date_created,
                    "docCategory": row.category,
                    "DocCategory": row.doc_category,
                    "ImgType": "",
                    "ToothNumbers": "",
                    "DateTStamp": "",
                    "serverDateTime": server_time,
                }
            )
        else:
            page.append(
                {
                    "DocNum": row.num,
                    "MountNum": row.mount_num,
                    "PatNum": pat_num,
                    "FileName": row.file_name,
                    "filePath": file_path(folder, row.file_name),
                    "Description": row.description,
                    "Note": visible_note(row.note),
                    "DateCreated": row.date_created,
                    "docCategory": row.category,
                    "DocCategory": row.doc_category,
                    "ImgType": img_type_name(row.img_type),
                    "ToothNumbers": row.tooth_numbers,
                    "DateTStamp": row.date_tstamp,
                    "serverDateTime": server_time,
                }
            )
    return page
