"""Rows as the seed's JSON: field names, dates, filePath, ImgType by name (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from atoz_watcher.contained import plain
from atoz_watcher.db.models import IMG_TYPE_NAMES
from atoz_watcher.db.queries import DocumentEntry, MountEntry
from atoz_watcher.documents import RAW_BASE64_NOTE
from atoz_watcher.layout import folder_name, letter_folder

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# Open Dental treats any date before 1880 as "no date" (0001-01-01 is what it stores); the API
# shows those as "".
FIRST_YEAR = 1880
_SAFE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}", re.ASCII)

Json = dict[str, Any]


def format_date(value: object) -> str:
    """``yyyy-MM-dd HH:mm:ss``; "" for no date (before 1880, MySQL's zero date, NULL)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip()[:26])
        except ValueError:
            return ""
    if isinstance(value, datetime):
        return "" if value.year < FIRST_YEAR else value.strftime(DATE_FORMAT)
    if isinstance(value, date):
        return "" if value.year < FIRST_YEAR else f"{value.isoformat()} 00:00:00"
    return ""


def sort_key(value: object) -> datetime:
    """A date as the list is ordered by it; no date sorts first."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip()[:26])
        except ValueError:
            return datetime.min
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.min


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
class FilePaths:
    """How filePath shows a file: ``root`` + Letter + ImageFolder + FileName, joined with
    ``separator``; ``root`` None for InDatabase (every filePath blank)."""

    root: str | None
    separator: str

    def of(self, *, image_folder: str, lname: str, fname: str, pat_num: int, file_name: str) -> str:
        if self.root is None or not file_name:
            return ""
        folder = image_folder or folder_name(lname, fname, pat_num)
        if not (plain(file_name) and plain(folder)):
            return ""  # a name that could lead out of its folder is never shown as a path
        root = self.root.rstrip(self.separator)  # "" for "/": the join starts with "/"
        return self.separator.join((root, letter_folder(folder), folder, file_name))


@dataclass(frozen=True, slots=True)
class Patient:
    pat_num: int
    image_folder: str
    lname: str
    fname: str


def document_json(
    entry: DocumentEntry,
    *,
    patient: Patient,
    categories: Mapping[int, str],
    paths: FilePaths,
    mount_num: int,
    server_time: str,
) -> Json:
    """One document as the seed shows it, plus PatNum, FileName and ImgType."""
    return {
        "DocNum": entry.doc_num,
        "MountNum": mount_num,
        "PatNum": entry.pat_num,
        "FileName": entry.file_name,
        "filePath": paths.of(
            image_folder=patient.image_folder,
            lname=patient.lname,
            fname=patient.fname,
            pat_num=patient.pat_num,
            file_name=entry.file_name,
        ),
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


def mount_json(entry: MountEntry, *, categories: Mapping[int, str], server_time: str) -> Json:
    """A mount: DocNum 0, no filePath, FileName, ImgType, ToothNumbers or DateTStamp."""
    return {
        "DocNum": 0,
        "MountNum": entry.mount_num,
        "PatNum": entry.pat_num,
        "FileName": "",
        "filePath": "",
        "Description": entry.description,
        "Note": entry.note,
        "DateCreated": format_date(entry.date_created),
        "docCategory": categories.get(entry.doc_category, ""),
        "DocCategory": entry.doc_category,
        "ImgType": "",
        "ToothNumbers": "",
        "DateTStamp": "",
        "serverDateTime": server_time,
    }


def patient_list(
    documents: Iterable[DocumentEntry],
    mounts: Iterable[MountEntry],
    items: Mapping[int, tuple[int, int]],
    *,
    patient: Patient,
    categories: Mapping[int, str],
    paths: FilePaths,
    server_time: str,
) -> list[Json]:
    """The patient's documents and mounts by DateCreated, as Open Dental's tree shows them.

    A document on an item of one of the listed mounts comes right after its mount (in the
    item's ItemOrder), with MountNum set to that mount; it is not listed anywhere else. A
    document whose mount item or mount is gone is listed on its own, with MountNum 0.
    """
    mount_list = list(mounts)
    mount_nums = {m.mount_num for m in mount_list}
    on_mount: dict[int, list[tuple[int, DocumentEntry]]] = {}
    loose: list[DocumentEntry] = []
    for doc in documents:
        item = items.get(doc.mount_item_num) if doc.mount_item_num else None
        if item is not None and item[0] in mount_nums:
            on_mount.setdefault(item[0], []).append((item[1], doc))
        else:
            loose.append(doc)

    def one(doc: DocumentEntry, mount_num: int) -> Json:
        return document_json(
            doc,
            patient=patient,
            categories=categories,
            paths=paths,
            mount_num=mount_num,
            server_time=server_time,
        )

    top: list[tuple[tuple[datetime, int, int], list[Json]]] = [
        ((sort_key(d.date_created), 1, d.doc_num), [one(d, 0)]) for d in loose
    ]
    for mount in mount_list:
        members = sorted(on_mount.get(mount.mount_num, []), key=lambda p: (p[0], p[1].doc_num))
        group = [mount_json(mount, categories=categories, server_time=server_time)]
        group.extend(one(doc, mount.mount_num) for _, doc in members)
        top.append(((sort_key(mount.date_created), 0, mount.mount_num), group))
    top.sort(key=lambda pair: pair[0])
    return [entry for _, group in top for entry in group]
