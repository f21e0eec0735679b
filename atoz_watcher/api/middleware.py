"""ASGI middleware: authentication, the request-body cap, one log line per request.

They run before FastAPI reads a byte of the body, so a client without a key, or with a body
larger than any upload can be, is answered without reading (let alone decoding) it.
"""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atoz_watcher.api.auth import KeyChecker
from atoz_watcher.api.errors import error_response

log = structlog.get_logger("atoz_watcher.api")

TOO_LARGE = "The request body is too large"


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key == name), None)


class Authenticator:
    """401 for every request without a configured key pair, except the public paths (the
    OpenAPI schema: Open Dental's own API documentation is public too) and the paths under
    ``own_auth`` (applications mounted beside the API that check their own users: a key pair
    neither opens nor closes them)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        checker: KeyChecker,
        public: frozenset[str],
        own_auth: tuple[str, ...] = (),
    ) -> None:
        self._app = app
        self._checker = checker
        self._public = public
        self._own_auth = tuple(prefix.rstrip("/") for prefix in own_auth)

    def _checked(self, path: str) -> bool:
        if path in self._public:
            return False
        return not any(path == p or path.startswith(p + "/") for p in self._own_auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._checked(scope["path"]):
            reason = self._checker.refuse(_header(scope, b"authorization"))
            if reason is not None:
                response = error_response(401, reason, {"WWW-Authenticate": "ODFHIR"})
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


class RequestLogger:
    """``api.request`` with method, path, status and milliseconds: never a header, the query
    string or a body."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            log.info(
                "api.request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
