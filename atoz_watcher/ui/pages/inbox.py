"""Inbox: the scans no rule could file (and the duplicates), each with its first page and why;
one file's page finds its patient, files it there (Assign) or moves it to the trash (Discard).

A file is named ``<folder index>/<name>`` and taken only from an inbox's ``_Unmatched/`` or
``_Duplicates/`` (``ui.preview.inbox_file``); anything else is a 400 page and nothing moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from atoz_watcher.db import queries, ui_queries
from atoz_watcher.documents.checks import PAT_STATUS_DELETED
from atoz_watcher.inbox import Inbox, InboxError, Routed, UnmatchedFile
from atoz_watcher.inbox.outcomes import Duplicate, Unmatched
from atoz_watcher.inbox.place import UNMATCHED
from atoz_watcher.rules.inbox_reasons import reason_words
from atoz_watcher.rules.naming import plain, visible_in_order
from atoz_watcher.ui.pages.words import hit_views, when
from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.preview import BadInboxFileError, Previews, file_value, inbox_file
from atoz_watcher.ui.web import LoggedIn, PostedForm, Refused, StaffOnly, Web

log = structlog.get_logger("atoz_watcher.ui")

_NO_INBOX: Final = "No scanner inbox is set up."
_SEE_OTHER: Final = 303
_LONGEST_NAME: Final = 255


class RefusedError(ValueError):
    """A form the page refuses (its 400), saying why."""


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A waiting file as the page shows it."""

    file: str  # "<folder index>/<name>", for URLs and forms
    name: str
    reason: str
    detail: str
    came: str
    original: str
    pages: str
    assignable: bool  # in _Unmatched/ (a duplicate can only be discarded)


def _pages(pages: tuple[int, ...] | None) -> str:
    if not pages:
        return ""
    if len(pages) > 1 and list(pages) == list(range(pages[0], pages[-1] + 1)):
        return f"{pages[0]}-{pages[-1]}"
    return ", ".join(str(p) for p in pages)


def _items(inbox: Inbox, found: list[UnmatchedFile]) -> list[InboxItem]:
    folders = inbox.paths
    items = []
    for waiting in found:
        inbox_path = waiting.path.parent.parent
        if inbox_path not in folders:
            continue
        items.append(
            InboxItem(
                file=file_value(folders.index(inbox_path), waiting.path),
                name=waiting.path.name,
                reason=reason_words(str(waiting.reason)),
                detail=waiting.detail,
                came=when(waiting.when) or "unknown time",
                original=waiting.original,
                pages=_pages(waiting.pages),
                assignable=waiting.path.parent.name == UNMATCHED,
            )
        )
    return items


def router(parts: UiParts, web: Web) -> APIRouter:  # noqa: C901, PLR0915 - one closure per route
    api = APIRouter()
    previews = Previews.of(parts)

    def done_message(done: str, name: str, doc: int | None) -> str:
        """What the redirect after Assign or Discard says; nothing for a name no inbox file
        could have (the address is the user's to edit)."""
        if not plain(name) or len(name) > _LONGEST_NAME:
            return ""
        if done == "trashed":
            return f"Moved {name} to the trash."
        if done == "filed" and doc is not None:
            with parts.reader.connect() as conn:
                line = ui_queries.document_line(conn, doc_num=doc)
            patient = line.patient if line is not None else "the patient"
            return f"Filed {name} to {patient}."
        return ""

    @api.get("/inbox", response_class=HTMLResponse)
    def inbox_page(
        request: Request,
        viewer: LoggedIn,
        done: str = "",
        name: str = "",
        doc: int | None = None,
    ) -> HTMLResponse:
        inbox = parts.inbox
        return web.page(
            request,
            viewer,
            "inbox.html",
            title="Inbox",
            configured=inbox is not None,
            unmatched=[] if inbox is None else _items(inbox, inbox.unmatched()),
            duplicates=[] if inbox is None else _items(inbox, inbox.duplicates()),
            done=done_message(done, name, doc),
        )

    def resolve(value: str) -> tuple[Inbox, Path, Path]:
        """The inbox, its folder and the file ``value`` names; BadInboxFileError."""
        if parts.inbox is None:
            raise BadInboxFileError(_NO_INBOX)
        folder, path = inbox_file(parts.inbox.paths, value)
        return parts.inbox, folder, path

    @api.get("/inbox/preview", response_model=None)
    def preview(
        viewer: LoggedIn,
        file: str = "",
        size: str = "small",
    ) -> Response:
        try:
            _, folder, path = resolve(file)
        except BadInboxFileError as exc:
            raise Refused(400, str(exc), viewer) from None
        picture = previews.inbox_preview(path, folder, large=size == "large")
        return Response(
            picture.data, media_type=picture.media_type, headers={"Cache-Control": "no-store"}
        )

    @api.get("/inbox/file", response_class=HTMLResponse)
    def inbox_file_page(
        request: Request,
        viewer: LoggedIn,
        file: str = "",
        q: Annotated[str, Query(max_length=200)] = "",
    ) -> HTMLResponse:
        try:
            inbox, _, path = resolve(file)
        except BadInboxFileError as exc:
            raise Refused(400, str(exc), viewer) from None
        waiting = [w for w in (*inbox.unmatched(), *inbox.duplicates()) if w.path == path]
        if not waiting:
            raise Refused(400, f"{path.name} is not waiting in the inbox.", viewer)
        item = _items(inbox, waiting)[0]
        with parts.reader.connect() as conn:
            hits = ui_queries.find_patients(conn, q.strip()) if q.strip() else []
            categories = visible_in_order(queries.image_categories(conn))
        return web.page(
            request,
            viewer,
            "inbox_file.html",
            title=item.name,
            item=item,
            q=q,
            hits=hit_views(hits),
            categories=categories,
        )

    def choice(form: FormData) -> tuple[int, int | None]:
        """The patient (who exists and is not deleted) and the category (None: the inbox's
        default) the form chose; RefusedError saying why not."""
        pat_text = str(form.get("pat_num") or "").strip()
        if not (pat_text.isascii() and pat_text.isdigit()):
            raise RefusedError("choose a patient first.")
        pat_num = int(pat_text)
        category_text = str(form.get("category") or "").strip()
        if category_text and not (category_text.isascii() and category_text.isdigit()):
            raise RefusedError("that is not an image category.")
        with parts.reader.connect() as conn:
            status = queries.pat_status(conn, pat_num=pat_num)
        if status is None:
            raise RefusedError(f"there is no patient {pat_num}.")
        if status == PAT_STATUS_DELETED:
            raise RefusedError(f"patient {pat_num} is deleted and takes no documents.")
        return pat_num, int(category_text) if category_text else None

    @api.post("/inbox/assign", response_model=None)
    def assign(
        viewer: StaffOnly,
        form: PostedForm,
    ) -> Response:
        file = str(form.get("file") or "")
        try:
            inbox, _, path = resolve(file)
        except BadInboxFileError as exc:
            raise Refused(400, f"Not filed: {exc}", viewer) from None
        try:
            pat_num, category = choice(form)
        except RefusedError as exc:
            raise Refused(400, f"Not filed: {exc}", viewer) from None
        try:
            outcome = inbox.assign(path, pat_num, category)
        except InboxError as exc:
            raise Refused(400, f"Not filed: {exc}", viewer) from None
        if not isinstance(outcome, Routed) or not outcome.doc_nums:
            raise Refused(400, f"Not filed: {_not_filed(outcome)}", viewer)
        log.info("ui.assigned", user=viewer.name, docnums=list(outcome.doc_nums))
        query = urlencode({"done": "filed", "name": path.name, "doc": outcome.doc_nums[0]})
        return RedirectResponse(f"/ui/inbox?{query}", status_code=_SEE_OTHER)

    @api.post("/inbox/discard", response_model=None)
    def discard(
        viewer: StaffOnly,
        form: PostedForm,
    ) -> Response:
        try:
            inbox, _, path = resolve(str(form.get("file") or ""))
        except BadInboxFileError as exc:
            raise Refused(400, f"Not moved: {exc}", viewer) from None
        try:
            inbox.discard(path)
        except (InboxError, OSError) as exc:
            raise Refused(400, f"Not moved: {exc}", viewer) from None
        log.info("ui.discarded", user=viewer.name)
        query = urlencode({"done": "trashed", "name": path.name})
        return RedirectResponse(f"/ui/inbox?{query}", status_code=_SEE_OTHER)

    return api


def _not_filed(outcome: object) -> str:
    if isinstance(outcome, Unmatched):
        return f"{reason_words(outcome.reason)}; it is back in the inbox as {outcome.name}"
    if isinstance(outcome, Duplicate):
        return f"the same content was filed already; it is in the duplicates as {outcome.name}"
    return str(getattr(outcome, "why", "skipped"))
