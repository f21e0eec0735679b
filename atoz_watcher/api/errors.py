"""Errors as Open Dental's API gives them: a status and a JSON string (``"Patient not found"``).

FastAPI's own shapes (``{"detail": ...}``, 422 with a list) never reach a client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from atoz_watcher.api.models import FieldError

log = structlog.get_logger("atoz_watcher.api")

BODY_NOT_OBJECT = "The request body must be a JSON object"
BODY_NOT_JSON = "The request body is not valid JSON"


class ApiError(Exception):
    """An answer that is not a success: the status and the message the client reads."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        super().__init__(message)


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    # ensure_ascii: a message quoting a client's text stays valid whatever that text holds.
    return Response(
        content=json.dumps(message, ensure_ascii=True),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _field(loc: Sequence[int | str]) -> str:
    """The field a location names: its second part (body, query or path, then the name)."""
    return str(loc[1]) if len(loc) > 1 else str(loc[0])


def describe(errors: Sequence[Any]) -> str:  # noqa: PLR0911 - one return per kind of error
    """The message for the first problem found, naming its field."""
    if not errors:
        return "The request is not valid"
    error: Mapping[str, Any] = errors[0]
    kind = error.get("type", "")
    loc: Sequence[int | str] = error.get("loc", ())
    if kind == "json_invalid":
        return BODY_NOT_JSON
    if tuple(loc) == ("body",):
        return BODY_NOT_OBJECT
    field = _field(loc)
    if kind == "missing":
        return f"{field} is required"
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        return str(cause)
    if isinstance(cause, ValueError):
        return f"{field} is invalid: {cause}"
    return f"{field} is invalid: {error.get('msg', 'not accepted')}"


def install_handlers(app: FastAPI) -> None:
    """Every error becomes a JSON string; nothing else reaches the client."""

    async def on_api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
        return error_response(exc.status, exc.message, exc.headers)

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        return error_response(400, describe(exc.errors()))

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101
        return error_response(exc.status_code, str(exc.detail), exc.headers)

    async def on_anything(request: Request, exc: Exception) -> Response:
        # Never reached by design; the traceback names the code, never a payload.
        log.error(
            "api.internal_error",
            method=request.method,
            path=request.url.path,
            error=type(exc).__name__,
        )
        return error_response(500, "Internal server error")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_anything)
