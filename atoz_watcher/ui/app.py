"""``create_ui(ui, parts)``: the front-desk page as a FastAPI application, mounted at /ui.

Login and logout, the sessions, the security headers, the error pages and the static files are
here; each page is a module of ``ui.pages`` with ``router(parts, web)``. Its parts come built
from the caller (``atoz_watcher.app.wiring``); its sessions and login counts are its own.
"""

from __future__ import annotations

import asyncio
import importlib
import math
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
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atoz_watcher.config.sections import UiSettings
from atoz_watcher.ui.auth import Users
from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.ratelimit import LoginLimiter
from atoz_watcher.ui.sessions import (
    COOKIE,
    LOGIN_COOKIE,
    LOGIN_TOKEN_S,
    LoginTokens,
    Session,
    SessionStore,
)
from atoz_watcher.ui.web import (
    FORM_EXPIRED,
    PREFIX,
    LoggedIn,
    LoginNeeded,
    PostedForm,
    Refused,
    Viewer,
    Web,
    login_url,
    safe_next,
)

log = structlog.get_logger("atoz_watcher.ui")

STATIC: Final = Path(__file__).parent / "static"
# The page modules, in the order their routes are tried; one that does not exist is left out.
PAGES: Final = ("today", "inbox", "patients", "health", "documents")
WRONG_LOGIN: Final = "Wrong name or password."
SESSION_ENDED: Final = "Your session ended: log in again."
SECURITY_HEADERS: Final = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
NO_STORE: Final = (b"cache-control", b"no-store")


def create_ui(
    ui: UiSettings, parts: UiParts, *, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    """The page ``ui`` describes over ``parts``. ``clock`` (seconds, monotonic) times the
    sessions' idleness and the login window: tests pass their own."""
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


class Login:
    """GET and POST /login: the form, then the name and password checked, counted, and a
    session started."""

    def __init__(
        self,
        web: Web,
        users: Users,
        limiter: LoginLimiter,
        tokens: LoginTokens,
        *,
        secure: bool,
    ) -> None:
        self._web = web
        self._users = users
        self._limiter = limiter
        self._tokens = tokens
        self._secure = secure

    async def form(
        self,
        request: Request,
        next: str = "",  # noqa: A002 - the query's name
        expired: str = "",
    ) -> Response:
        found = self._web.sessions.find(request.cookies.get(COOKIE))
        if isinstance(found, Session):
            # Logged in already (another tab, the back button): on to where it was going.
            return RedirectResponse(safe_next(next), status_code=303)
        alert = SESSION_ENDED if expired == "1" else ""
        return self._page(request, next_path=next, alert=alert)

    async def submit(self, request: Request) -> Response:
        form = await request.form()
        name = _text(form, "username")
        password = _text(form, "password")
        next_path = _text(form, "next")
        if not self._tokens.accepts(request.cookies.get(LOGIN_COOKIE), _text(form, "csrf")):
            log.info("ui.login_refused", reason="form expired")
            return self._page(request, next_path=next_path, alert=FORM_EXPIRED, status=403)
        address = request.client.host if request.client else ""
        wait = self._limiter.retry_after(name, address)
        if wait is not None:
            log.warning("ui.login_refused", reason="too many attempts", retry_after=wait)
            minutes = math.ceil(wait / 60)
            alert = (
                f"Too many attempts: wait {minutes} minute{'s' if minutes != 1 else ''} "
                "and try again."
            )
            response = self._page(request, next_path=next_path, alert=alert, status=429)
            response.headers["Retry-After"] = str(wait)
            return response
        user = await asyncio.to_thread(self._users.check, name, password)
        if user is None:
            self._limiter.failed(name, address)
            # Never the name typed: it may be a password typed in the wrong box.
            log.info("ui.login_refused", reason="wrong name or password")
            # The form comes back empty: what was typed in the name box may be a password.
            return self._page(request, next_path=next_path, alert=WRONG_LOGIN, status=401)
        self._limiter.succeeded(name)
        cookie, _session = self._web.sessions.start(user.name, may_move=user.may_move)
        log.info("ui.login", user=user.name)
        response = RedirectResponse(safe_next(next_path), status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=self._secure,
        )
        response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login", httponly=True)
        return response

    def _page(
        self,
        request: Request,
        *,
        next_path: str,
        alert: str = "",
        status: int = 200,
    ) -> Response:
        cookie, token = self._tokens.issue()
        response = self._web.page(
            request,
            None,
            "login.html",
            status_code=status,
            title="Log in",
            login_csrf=token,
            next=safe_next(next_path) if next_path else "",
            alert=alert,
        )
        response.set_cookie(
            LOGIN_COOKIE,
            cookie,
            max_age=LOGIN_TOKEN_S,
            path=f"{PREFIX}/login",
            httponly=True,
            samesite="strict",
            secure=self._secure,
        )
        return response


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


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
        messages = {404: "There is no such page.", 405: "This page cannot be used that way."}
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


class SecurityHeaders:
    """The page's response headers: CSP, nosniff, same-origin referrers on everything, and
    ``Cache-Control: no-store`` on all but the static files (a page may show a patient)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope["path"][len(scope.get("root_path", "")) :]
        static = path.startswith("/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (key, value)
                    for key, value in message.get("headers", [])
                    if key.lower() not in {name for name, _ in SECURITY_HEADERS}
                ]
                headers.extend(SECURITY_HEADERS)
                if not static:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append(NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, sending)


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
