"""Today (``GET /ui/``): the shell's stand-in, a page titled Today; the pages' branch replaces
it with the table of the newest documents."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.web import LoggedIn, Web


def router(parts: UiParts, web: Web) -> APIRouter:
    del parts
    routes = APIRouter()

    @routes.get("/", response_class=HTMLResponse)
    async def today(request: Request, viewer: LoggedIn) -> HTMLResponse:
        return web.page(request, viewer, "base.html", title="Today")

    return routes
