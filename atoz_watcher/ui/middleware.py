"""The page's ASGI middleware (its response headers), and its answer to a body over its cap."""

from __future__ import annotations

from typing import Final

from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: Final = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
NO_STORE: Final = (b"cache-control", b"no-store")
# The page's forms are a few fields (no uploads): a larger body is refused unread, before
# anyone has logged in (Starlette would read a urlencoded form whole into memory).
MAX_BODY_BYTES: Final = 64 * 1024


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


def too_large() -> HTMLResponse:
    """The page's answer to a body over its cap."""
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Too large</title>'
        '</head><body><main id="main"><h1>Too large</h1><p role="alert">This form is larger '
        "than any the page sends.</p></main></body></html>",
        status_code=413,
    )
