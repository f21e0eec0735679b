"""Today: the newest documents, newest first, with how each came; and the rows newer than N
that ``ui.js`` asks for every second."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from atoz_watcher.db import ui_queries
from atoz_watcher.ui.pages.words import DocumentView, document_views
from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.web import LoggedIn, Web


def router(parts: UiParts, web: Web) -> APIRouter:
    api = APIRouter()

    def latest(after: int | None) -> list[DocumentView]:
        with parts.reader.connect() as conn:
            if after is None:
                lines = ui_queries.latest_documents(conn, limit=parts.today_limit)
            else:
                lines = ui_queries.documents_since(
                    conn, after_doc_num=after, limit=parts.today_limit
                )
        return document_views(lines, parts.activity.ways)

    @api.get("/", response_class=HTMLResponse)
    def today(request: Request, viewer: LoggedIn) -> HTMLResponse:
        rows = latest(None)
        return web.page(
            request,
            viewer,
            "today.html",
            title="Today",
            rows=rows,
            latest=max((row.doc_num for row in rows), default=0),
            limit=parts.today_limit,
        )

    @api.get("/today/rows", response_class=HTMLResponse)
    def rows(
        viewer: LoggedIn,
        after: Annotated[int, Query(ge=0)] = 0,
    ) -> HTMLResponse:
        """The rows above ``after``, newest first: a fragment of ``<tr>``s, empty when none."""
        del viewer
        found = latest(after)
        html = web.templates.get_template("_today_rows.html").render(rows=found) if found else ""
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    return api
