"""POST /documents/Upload read as it arrives: the body goes through ``UploadBody`` in batches
on a worker thread (decoding and writing never block the event loop), then the document is
made from the spool. One batch per request is in memory at a time.
"""

from __future__ import annotations

from email.message import Message
from typing import Any

import anyio
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from atoz_watcher.api.errors import BODY_NOT_OBJECT, ApiError
from atoz_watcher.api.service import DocumentService, Uploaded
from atoz_watcher.api.upload_body import UploadBody

# Bytes of body handed to the worker thread at once: large enough that the hand-over costs
# nothing next to the decoding, small enough to be nothing next to a file's size.
BATCH_BYTES = 1024 * 1024
UPLOAD_BODY_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UploadRequest"}}},
        "required": True,
    }
}


def is_json(content_type: str | None) -> bool:
    """What FastAPI reads as JSON: no Content-Type (``strict_content_type=False``),
    application/json or application/*+json."""
    if not content_type:
        return True
    message = Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


async def receive_upload(request: Request, service: DocumentService) -> Uploaded:
    """Read, check and store one Upload; on any failure no spool is left behind."""
    if not is_json(request.headers.get("content-type")):
        raise ApiError(400, BODY_NOT_OBJECT)
    body = service.upload_body()
    try:
        await _read(request, body)
        parsed = await run_in_threadpool(body.finish)
        return await run_in_threadpool(service.upload, parsed)
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(body.discard)


async def _read(request: Request, body: UploadBody) -> None:
    batch: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        batch.append(chunk)
        size += len(chunk)
        if size >= BATCH_BYTES:
            await run_in_threadpool(body.feed, b"".join(batch))
            batch.clear()
            size = 0
    if batch:
        await run_in_threadpool(body.feed, b"".join(batch))
