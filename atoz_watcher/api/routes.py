"""The endpoints under /api/v1, as Open Dental's API names them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from atoz_watcher.api.models import (
    BIGINT_MAX,
    DocumentOut,
    DownloadMountRequest,
    DownloadSftpRequest,
    FileOut,
    LocationOut,
    SetByUrlRequest,
    ThumbnailsRequest,
    UploadSftpRequest,
)
from atoz_watcher.api.paging import LIMIT_INVALID, OFFSET_INVALID, page_of
from atoz_watcher.api.reads import ReadLane
from atoz_watcher.api.service import DocumentService
from atoz_watcher.api.transfers import NO_MOUNT_IMAGES, NO_THUMBNAILS, SftpService
from atoz_watcher.api.upload_stream import UPLOAD_BODY_SCHEMA, receive_upload

PREFIX = "/api/v1"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": "string"}}},
    }


COMMON: dict[int | str, dict[str, Any]] = {
    400: _error('A field is missing or malformed; the body names it ("PatNum is required").'),
    401: _error("No Authorization header, a malformed one, or an unknown key pair."),
    503: _error("The database or the A-to-Z folder is unavailable; try again later."),
}
POSTED: dict[int | str, dict[str, Any]] = {
    **COMMON,
    404: _error('"Patient not found"'),
    413: _error("The request body is larger than any upload can be."),
}


SFTP_FAILED = (
    "A field is missing or malformed (the body names it), or the SFTP site failed: the body "
    "says what failed (connect, host key, user name or password, not found, permission, "
    "timeout, host or port not allowed)."
)
SFTP_BUSY = (
    "The database or the A-to-Z folder is unavailable, or [sftp] max_in_flight SFTP transfers "
    "are already running (with Retry-After); try again later."
)


def build_router(
    service: DocumentService,
    sftp: SftpService,
    *,
    max_limit: int,
    reads: ReadLane,
) -> APIRouter:
    """The routes, closed over the service that does the work (no global state)."""
    router = APIRouter(prefix=PREFIX, responses=COMMON)

    @router.get(
        "/documents",
        response_model=list[DocumentOut],
        summary="The documents and mounts of a patient, ordered by DateCreated, a page at a time",
        description=(
            f"At most `Limit` items (default and largest {max_limit}) from item `Offset` on "
            "(default 0, the first). Request pages until one comes back shorter than the "
            "limit. A document on a mount is listed right after its mount."
        ),
        responses={
            400: _error(f'"{LIMIT_INVALID}", "{OFFSET_INVALID}", or a PatNum error'),
            404: _error('"Patient not found"'),
        },
    )
    async def list_documents(
        pat_num: Annotated[int, Query(alias="PatNum", ge=1, le=BIGINT_MAX, examples=[1])],
        limit: Annotated[str | None, Query(alias="Limit", examples=["100"])] = None,
        offset: Annotated[str | None, Query(alias="Offset", examples=["0"])] = None,
    ) -> JSONResponse:
        page = page_of(limit, offset, max_limit=max_limit)
        return await reads.run(
            lambda: JSONResponse(service.list_for(pat_num, limit=page.limit, offset=page.offset))
        )

    @router.post(
        "/documents/Upload",
        status_code=201,
        response_model=DocumentOut,
        summary="Store a file sent as base64 and make its document",
        responses=POSTED,
        # The body is read as it arrives (upload_stream), not by FastAPI: its schema is given.
        openapi_extra=UPLOAD_BODY_SCHEMA,
    )
    async def upload(request: Request) -> JSONResponse:
        uploaded = await receive_upload(request, service)
        return _created(uploaded.document)

    @router.post(
        "/documents/SetByUrl",
        status_code=201,
        response_model=DocumentOut,
        summary="Make a document whose file is downloaded from a URL later",
        responses=POSTED,
    )
    def set_by_url(body: SetByUrlRequest) -> JSONResponse:
        return _created(service.set_by_url(body))

    _add_sftp_routes(router, sftp)

    # Digits only, and after the fixed paths: /documents/Upload is never taken for a DocNum
    # (GET on it is a 405 with "Allow: POST", not a 400 about DocNum).
    @router.get(
        "/documents/{DocNum:int}",
        response_model=DocumentOut,
        summary="One document",
        responses={404: _error('"Document not found"')},
    )
    async def get_document(
        doc_num: Annotated[int, Path(alias="DocNum", ge=1, le=BIGINT_MAX, examples=[1])],
    ) -> JSONResponse:
        return await reads.run(lambda: JSONResponse(service.one(doc_num)))

    return router


def _add_sftp_routes(router: APIRouter, sftp: SftpService) -> None:
    @router.post(
        "/documents/UploadSftp",
        status_code=201,
        response_model=DocumentOut,
        summary="Pull a file from an SFTP site and make its document",
        responses={**POSTED, 400: _error(SFTP_FAILED), 503: _error(SFTP_BUSY)},
    )
    def upload_sftp(body: UploadSftpRequest) -> JSONResponse:
        return _created(sftp.upload_sftp(body).document)

    @router.post(
        "/documents/DownloadSftp",
        status_code=201,
        response_model=LocationOut,
        summary="Put a document's file, or a mount's composite JPEG, on an SFTP site",
        responses={
            **COMMON,
            400: _error(SFTP_FAILED),
            503: _error(SFTP_BUSY),
            404: _error('"Document not found" or "Mount not found"'),
        },
    )
    def download_sftp(body: DownloadSftpRequest) -> JSONResponse:
        return JSONResponse({"location": sftp.download_sftp(body)}, status_code=201)

    @router.post(
        "/documents/Thumbnails",
        status_code=201,
        response_model=list[FileOut],
        summary="Put the 100x100 thumbnails of a patient's images in an SFTP folder",
        responses={
            **COMMON,
            200: _error(f'"{NO_THUMBNAILS}"'),
            400: _error(SFTP_FAILED),
            503: _error(SFTP_BUSY),
            404: _error('"Patient not found" or "No documents exist for this patient"'),
        },
    )
    def thumbnails(body: ThumbnailsRequest) -> JSONResponse:
        return _files(sftp.thumbnails(body), NO_THUMBNAILS)

    @router.post(
        "/documents/DownloadMount",
        status_code=201,
        response_model=list[FileOut],
        summary="Put every image of a mount in an SFTP folder",
        responses={
            **COMMON,
            200: _error(f'"{NO_MOUNT_IMAGES}"'),
            400: _error(SFTP_FAILED),
            503: _error(SFTP_BUSY),
            404: _error('"Mount not found."'),
        },
    )
    def download_mount(body: DownloadMountRequest) -> JSONResponse:
        return _files(sftp.download_mount(body), NO_MOUNT_IMAGES)


def _files(files: list[dict[str, Any]] | None, nothing: str) -> JSONResponse:
    if files is None:
        return JSONResponse(nothing, status_code=200)
    return JSONResponse(files, status_code=201)


def _created(document: dict[str, Any]) -> JSONResponse:
    return JSONResponse(
        document,
        status_code=201,
        headers={"Location": f"{PREFIX}/documents/{document['DocNum']}"},
    )
