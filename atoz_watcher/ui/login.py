"""``GET`` and ``POST /ui/login``: the form, then the name and password checked (argon2),
the failures counted (``ratelimit``), and a session started (``sessions``)."""

from __future__ import annotations

import asyncio
import math
from typing import Final

import structlog
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from atoz_watcher.rules.wording import plural
from atoz_watcher.ui.auth import Users
from atoz_watcher.ui.ratelimit import LoginLimiter
from atoz_watcher.ui.sessions import (
    COOKIE,
    LOGIN_COOKIE,
    LOGIN_TOKEN_S,
    LoginTokens,
    Session,
)
from atoz_watcher.ui.web import FORM_EXPIRED, PREFIX, Web, safe_next

log = structlog.get_logger("atoz_watcher.ui")

WRONG_LOGIN: Final = "Wrong name or password."
SESSION_ENDED: Final = "Your session ended: log in again."


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
            log.warning(
                "ui.login_refused", reason="too many attempts", client=address, retry_after=wait
            )
            minutes = math.ceil(wait / 60)
            alert = f"Too many attempts: wait {plural(minutes, 'minute')} and try again."
            response = self._page(request, next_path=next_path, alert=alert, status=429)
            response.headers["Retry-After"] = str(wait)
            return response
        user = await asyncio.to_thread(self._users.check, name, password)
        if user is None:
            self._limiter.failed(name, address)
            # Neither logged nor shown again: what was typed as the name may be a password.
            log.info("ui.login_refused", reason="wrong name or password", client=address)
            return self._page(request, next_path=next_path, alert=WRONG_LOGIN, status=401)
        self._limiter.succeeded(name)
        cookie, _session = self._web.sessions.start(user.name, may_move=user.may_move)
        log.info("ui.login", user=user.name, client=address)
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
