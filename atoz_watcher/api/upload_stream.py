"""POST /documents/Upload read as it arrives: each chunk of the body goes through
``UploadBody`` as the server hands it over (a socket read: 256 KB at most on uvicorn's
asyncio loop), then, in one hop to a worker thread, the spool is fsynced and the document
made from it. One chunk and its decoded bytes are in memory.

The chunks are parsed on the event loop, not handed to a thread: with rawBase64 decoded by
SIMD, a chunk costs ~0.1 ms to scan, decode and write into the page cache, less than a hand-over
to a thread and back (batches on a worker thread made a 10 MB Upload ~5 ms slower, with a
1 MB copy per batch). The write never waits for the disk: the spool has the disk write what
it holds every 2 MB, so its dirty pages stay few; the fsync, which does wait, is not here.
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
        return await run_in_threadpool(_store, body, service)
    finally:
        # After a store, its thread has discarded what was left: no second hop before the
        # answer. A refused or cut-off body still holds its spool here.
        if body.holds_spools():
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(body.discard)


def _store(body: UploadBody, service: DocumentService) -> Uploaded:
    """The body's end: the request validated, its spool fsynced, the document made; then
    whatever spool storage did not take (a refusal) is removed, in this same thread."""
    try:
        return service.upload(body.finish())
    finally:
        body.discard()


async def _read(request: Request, body: UploadBody) -> None:
    """The body to the parser as it arrives, chunk by chunk. A refusal by the parser (the
    limit passed) stops the reading at once, whether or not more of the body comes."""
    async for chunk in request.stream():
        body.feed(chunk)
