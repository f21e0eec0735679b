"""``create_ui(ui, parts)``: the front-desk page as a FastAPI application, mounted at /ui.

The app puts together login (``ui.login``) and logout, the sessions, the headers and the body
cap (``ui.middleware``), the error pages and the static files; each page is a module of
``ui.pages`` with ``router(parts, web)``. Its parts come built
from the caller (``atoz_watcher.app.wiring``); its sessions and login counts are its own.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from atoz_watcher.config.sections import UiSettings
from atoz_watcher.system.body_cap import BodyCap
from atoz_watcher.ui.auth import Users
from atoz_watcher.ui.login import Login
from atoz_watcher.ui.middleware import MAX_BODY_BYTES, SecurityHeaders, too_large
from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.ratelimit import LoginLimiter
from atoz_watcher.ui.sessions import COOKIE, LoginTokens, SessionStore
from atoz_watcher.ui.web import (
    PREFIX,
    LoggedIn,
    LoginNeeded,
    PostedForm,
    Refused,
    Viewer,
    Web,
    login_url,
)

log = structlog.get_logger("atoz_watcher.ui")

STATIC: Final = Path(__file__).parent / "static"
# The page modules, in the order their routes are tried; one that does not exist is left out.
PAGES: Final = ("today", "inbox", "patients", "health", "documents")


def create_ui(
    ui: UiSettings, parts: UiParts, *, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    """The page ``ui`` describes over ``parts``. ``clock`` (seconds, monotonic) times the
    sessions' idleness and the login window: tests pass their own."""
    if not ui.users:
        log.warning("ui.no_users", fix="add [[ui.users]] (atoz-watcher hash-password)")
    sessions = SessionStore(idle_s=ui.session_idle_minutes * 60, clock=clock)
    web = Web(sessions)
    login = Login(
        web,
        Users(ui.users),
        LoginLimiter(
            attempts=ui.login_attempts, window_s=ui.login_window_minutes * 60, clock=clock
        ),
        LoginTokens(),
        secure=ui.secure_cookies,
    )
    app = FastAPI(
        title="atoz-watcher front desk",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.web = web
    _install_handlers(app, web)
    app.add_api_route("/login", login.form, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/login", login.submit, methods=["POST"], response_class=HTMLResponse)

    async def logout(request: Request, viewer: LoggedIn, _form: PostedForm) -> RedirectResponse:
        sessions.end(request.cookies.get(COOKIE))
        log.info("ui.logout", user=viewer.name)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX, secure=ui.secure_cookies, httponly=True)
        return response

    app.add_api_route("/logout", logout, methods=["POST"])
    for router in page_routers(parts, web):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # The last added runs first: headers on every answer, the body cap's included.
    app.add_middleware(
        BodyCap, max_bytes=MAX_BODY_BYTES, refusal=too_large, overflow=lambda: HTTPException(413)
    )
    app.add_middleware(SecurityHeaders)
    return app


def page_routers(parts: UiParts, web: Web) -> list[APIRouter]:
    """The routers of the page modules that exist (``router(parts, web)`` of each)."""
    routers: list[APIRouter] = []
    for name in PAGES:
        module_name = f"{__package__}.pages.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # a page that exists but cannot import: a bug to see, not to hide
            continue
        router = module.router(parts, web)
        if not isinstance(router, APIRouter):
            raise TypeError(f"{module_name}.router returned {router!r}, not an APIRouter")
        routers.append(router)
    return routers


def _install_handlers(app: FastAPI, web: Web) -> None:
    async def login_needed(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginNeeded)  # noqa: S101 - registered for it alone
        response = RedirectResponse(login_url(exc.next_path, expired=exc.expired), 303)
        if exc.expired:
            response.delete_cookie(COOKIE, path=PREFIX, httponly=True)
        return response

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)  # noqa: S101 - registered for it alone
        return error_page(web, request, exc.status, exc.message, exc.viewer)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101 - registered for it alone
        messages = {
            404: "There is no such page.",
            405: "This page cannot be used that way.",
            413: "This form is larger than any the page sends.",
        }
        message = messages.get(exc.status_code, "This request cannot be answered.")
        return error_page(web, request, exc.status_code, message, _current_viewer(web, request))

    async def invalid(request: Request, exc: Exception) -> Response:
        del exc  # its details name the parameters, not what the user can do about them
        return error_page(
            web,
            request,
            400,
            "This address is not valid: go back and try again.",
            _current_viewer(web, request),
        )

    app.add_exception_handler(LoginNeeded, login_needed)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)


def error_page(
    web: Web, request: Request, status: int, message: str, viewer: Viewer | None
) -> HTMLResponse:
    titles = {400: "Not done", 403: "Not allowed", 404: "Not found", 429: "Too many attempts"}
    return web.page(
        request,
        viewer,
        "error.html",
        status_code=status,
        title=titles.get(status, "Not done"),
        message=message,
    )


def _current_viewer(web: Web, request: Request) -> Viewer | None:
    try:
        session = web.session(request)
    except LoginNeeded:
        return None
    return Viewer(session.name, session.may_move, session.csrf)


def standalone(ui_app: FastAPI, *, on_close: Callable[[], None] | None = None) -> FastAPI:
    """A server's app holding the page alone (no Documents API): /ui, and / sends there.
    ``on_close`` runs when the server stops (the caller's read engine, say)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if on_close is not None:
                on_close()

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    async def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=303)

    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)
    app.mount(PREFIX, ui_app)
    return app
