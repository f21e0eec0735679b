"""``BodyCap``: an ASGI middleware that refuses a request body over a size, the API's and the
page's alike (each says "too large" in its own shape).

A body announced larger (Content-Length) is refused before a byte of it is read; a chunked one
is cut off as soon as it passes the cap, by the exception the caller names, which its own
handlers turn into the answer.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyCap:
    """``refusal`` for a body announced over ``max_bytes``; ``overflow()`` raised as soon as
    a body without a (truthful) Content-Length passes it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        refusal: Callable[[], ASGIApp],
        overflow: Callable[[], Exception],
    ) -> None:
        self._app = app
        self._max = max_bytes
        self._refusal = refusal
        self._overflow = overflow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self._max:
            await self._refusal()(scope, receive, send)
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max:
                    raise self._overflow()
            return message

        await self._app(scope, capped, send)
