"""Patients: find one (name, PatNum, chart number, birth date); a patient's documents by
category, 200 to a page; and the cover sheet that routes a scan to this patient (and a
category) through the inbox."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from atoz_watcher.db import queries, ui_queries
from atoz_watcher.documents.checks import PAT_STATUS_DELETED, visible_category
from atoz_watcher.errors import NoSuchCategoryError
from atoz_watcher.imaging.coversheet import PaperSize, sheet_for, write_cover_sheet
from atoz_watcher.rules.naming import visible_in_order
from atoz_watcher.rules.wording import plural
from atoz_watcher.ui.pages.words import (
    DocumentView,
    birth,
    document_views,
    hit_views,
)
from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.web import LoggedIn, PostedForm, Refused, Web

PAGE_SIZE: Final = 200
# Pages beyond this are not offered (200 000 documents for one patient is no real chart).
_LAST_PAGE: Final = 1000


@dataclass(slots=True)
class CategoryGroup:
    def_num: int
    name: str
    documents: list[DocumentView] = field(default_factory=list)


def groups(documents: list[DocumentView]) -> list[CategoryGroup]:
    """The documents, in their (category-ordered) order, grouped by category."""
    found: list[CategoryGroup] = []
    for document in documents:
        if not found or found[-1].def_num != document.category_num:
            name = document.category or f"Category {document.category_num} (gone)"
            found.append(CategoryGroup(document.category_num, name))
        found[-1].documents.append(document)
    return found


def router(parts: UiParts, web: Web) -> APIRouter:
    api = APIRouter()

    @api.get("/patients", response_class=HTMLResponse)
    def patients(
        request: Request,
        viewer: LoggedIn,
        q: Annotated[str, Query(max_length=200)] = "",
    ) -> HTMLResponse:
        hits = []
        if q.strip():
            with parts.reader.connect() as conn:
                hits = ui_queries.find_patients(conn, q.strip())
        return web.page(
            request, viewer, "patients.html", title="Patients", q=q, hits=hit_views(hits)
        )

    @api.get("/patients/{pat_num}", response_class=HTMLResponse)
    def patient(
        pat_num: int,
        request: Request,
        viewer: LoggedIn,
        page: Annotated[int, Query(ge=1, le=_LAST_PAGE)] = 1,
    ) -> HTMLResponse:
        with parts.reader.connect() as conn:
            card = queries.patient_card(conn, pat_num=pat_num)
            if card is None:
                raise Refused(404, f"No patient {pat_num}.", viewer)
            lines = ui_queries.patient_documents(
                conn, pat_num=pat_num, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
            )
            categories = visible_in_order(queries.image_categories(conn))
        more = len(lines) > PAGE_SIZE
        shown = document_views(lines[:PAGE_SIZE], None)
        return web.page(
            request,
            viewer,
            "patient.html",
            title=f"{card.lname}, {card.fname}",
            pat_num=pat_num,
            name=f"{card.lname}, {card.fname}",
            birth=birth(card.birth_date),
            deleted=card.pat_status == PAT_STATUS_DELETED,
            groups=groups(shown),
            count_text=_count_text(len(shown), page=page, more=more),
            page=page,
            previous_page=page - 1 if page > 1 else None,
            next_page=page + 1 if more else None,
            categories=categories,
        )

    @api.post("/patients/{pat_num}/cover-sheet", response_model=None)
    def cover_sheet(
        pat_num: int,
        viewer: LoggedIn,
        form: PostedForm,
    ) -> Response:
        paper_text = str(form.get("paper") or "letter")
        if paper_text not in {p.value for p in PaperSize}:
            raise Refused(400, f"No paper size {paper_text!r}: letter or a4.", viewer)
        category_text = str(form.get("category") or "").strip()
        with parts.reader.connect() as conn:
            card = queries.patient_card(conn, pat_num=pat_num)
            if card is None:
                raise Refused(404, f"No patient {pat_num}.", viewer)
            if card.pat_status == PAT_STATUS_DELETED:
                raise Refused(400, f"Patient {pat_num} is deleted and takes no documents.", viewer)
            try:
                category = visible_category(conn, category_text) if category_text else None
            except NoSuchCategoryError as exc:
                raise Refused(400, f"No cover sheet: {exc}", viewer) from None
        pdf = io.BytesIO()
        write_cover_sheet(sheet_for(card, category), pdf, paper=PaperSize(paper_text))
        return Response(
            pdf.getvalue(),
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="cover-sheet-{pat_num}.pdf"',
                "Cache-Control": "no-store",
            },
        )

    return api


def _count_text(shown: int, *, page: int, more: bool) -> str:
    if shown == 0:
        return ""
    first = (page - 1) * PAGE_SIZE + 1
    if page == 1 and not more:
        return f"{plural(shown, 'document')}."
    return f"Documents {first} to {first + shown - 1}."
