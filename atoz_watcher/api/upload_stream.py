"""POST /documents/Upload read as it arrives: the body goes through ``UploadBody`` in batches
on a worker thread (decoding and writing never block the event loop), then the document is
made from the spool. Three batches of 1 MB per request are in memory at most.
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
    """The body in batches to the parser's thread; the next batch is received while the last
    is decoded and written (three batches in memory at most). A refusal by the parser (the
    limit passed) stops the reading at once, whether or not more of the body comes."""
    batches, pending = anyio.create_memory_object_stream[bytes](1)

    async def feed() -> None:
        async with pending:
            async for batch in pending:
                await run_in_threadpool(body.feed, batch)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(feed)
            async with batches:
                collected: list[bytes] = []
                size = 0
                async for chunk in request.stream():
                    collected.append(chunk)
                    size += len(chunk)
                    if size >= BATCH_BYTES:
                        await batches.send(b"".join(collected))
                        collected.clear()
                        size = 0
                if collected:
                    await batches.send(b"".join(collected))
    except BaseExceptionGroup as group:
        # One failure (the parser's 400, the body limiter's 413, a client gone) is what the
        # handlers answer; the task group only wraps it.
        raise group.exceptions[0] from None
