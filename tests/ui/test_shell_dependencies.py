"""The contract's way to write a page: ``Annotated[Viewer, Depends(web.viewer)]`` in a module
without ``from __future__ import annotations`` (FastAPI must see ``web``, local to
``router``, when the handler is defined), beside the aliases that work either way."""

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.web import Viewer, Web
from tests.support.ui import STAFF, VIEWER, UiSite, csrf_of, serving_ui
from tests.support.worlds import make_world


def contract_pages(parts: UiParts, web: Web) -> APIRouter:
    del parts
    routes = APIRouter()

    @routes.get("/look", response_class=HTMLResponse)
    async def look(
        request: Request, viewer: Annotated[Viewer, Depends(web.viewer)]
    ) -> HTMLResponse:
        return web.page(request, viewer, "base.html", title=f"Looking: {viewer.may_move}")

    @routes.post("/move", response_class=HTMLResponse)
    async def move(
        request: Request,
        viewer: Annotated[Viewer, Depends(web.staff)],
        form: Annotated[FormData, Depends(web.form)],
    ) -> HTMLResponse:
        return web.page(request, viewer, "base.html", title=f"Moved {form.get('what')}")

    return routes


@pytest.fixture
def site(tmp_path: Path) -> Iterator[UiSite]:
    for world in make_world("sqlite", tmp_path):
        with serving_ui(world, routers=[contract_pages]) as site:
            yield site


def test_pages_written_as_the_contract_says_work(site: UiSite) -> None:
    with site.client() as anonymous:
        assert anonymous.get("/ui/look").headers["location"] == "/ui/login?next=/ui/look"
    with site.logged_in(STAFF) as client:
        page = client.get("/ui/look")
        assert "<h1>Looking: True</h1>" in page.text
        moved = client.post("/ui/move", data={"csrf": csrf_of(page.text), "what": "scan.pdf"})
        assert "<h1>Moved scan.pdf</h1>" in moved.text
        assert client.post("/ui/move", data={"what": "scan.pdf"}).status_code == 403
    with site.logged_in(VIEWER) as client:
        page = client.get("/ui/look")
        assert "<h1>Looking: False</h1>" in page.text
        refused = client.post("/ui/move", data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 403
        assert "may look but not move files" in refused.text
