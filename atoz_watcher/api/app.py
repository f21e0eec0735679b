"""``create_app(api, parts)``: the Documents API as a FastAPI application.

Its parts (storage, engines, writer, renderer, SFTP client) come built from the caller
(``atoz_watcher.app.wiring``, the one place that reads Settings); the routes' own objects are
built here and handed to them; nothing is global.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from atoz_watcher import __version__
from atoz_watcher.api.auth import KeyChecker
from atoz_watcher.api.errors import error_response, install_handlers
from atoz_watcher.api.middleware import TOO_LARGE, Authenticator, RequestLogger
from atoz_watcher.api.models import UploadRequest
from atoz_watcher.api.present import FilePaths
from atoz_watcher.api.reads import ReadLane
from atoz_watcher.api.routes import PREFIX, build_router
from atoz_watcher.api.service import DocumentService
from atoz_watcher.api.transfers import SftpService
from atoz_watcher.api.upload_body import encoded_limit
from atoz_watcher.config.sections import ApiSettings
from atoz_watcher.db.activity import NO_RECORD, Recorder
from atoz_watcher.documents.writer import DocumentWriter
from atoz_watcher.imaging.jobs import OnStored, no_thumbnails
from atoz_watcher.imaging.mounts import MountComposer
from atoz_watcher.imaging.queue import ThumbnailWorker, default_workers
from atoz_watcher.imaging.render import Renderer
from atoz_watcher.net.sftp import SftpClient
from atoz_watcher.storage import Storage, spool
from atoz_watcher.system.body_cap import BodyCap

OPENAPI_PATH = f"{PREFIX}/openapi.json"
# Room in a request body for the fields around rawBase64.
BODY_SLACK = 1024 * 1024
# At shutdown, how long the API's own thumbnail queue may take to finish what Uploads queued
# (within ApiServer's wait for the serving thread).
THUMBNAILS_DRAIN_S = 3.0
DESCRIPTION = (
    "Open Dental's Documents API (GET, Upload, SetByUrl, UploadSftp, DownloadSftp, Thumbnails, "
    "DownloadMount), served by atoz-watcher. "
    "Every endpoint needs `Authorization: ODFHIR <DeveloperKey>/<CustomerKey>`. "
    "Errors are a JSON string."
)


@dataclass(frozen=True)
class ApiParts:
    """What the API works with, built by the caller (``atoz_watcher.app.wiring``)."""

    engine: Engine  # writes, under the registration lock; the caller's to dispose
    reader: Engine  # reads, which never wait for that lock; closed when the app stops
    writer: DocumentWriter
    storage: Storage
    root: Path  # the A-to-Z root, as this machine sees it
    in_database: bool  # Open Dental keeps the files in document.RawBase64
    thumbnails: bool  # an uploaded image gets its thumbnail, from a queue, after the reply
    thumbnail_workers: int  # the API's own queue's threads, when it is served on its own
    renderer: Renderer  # Thumbnails, DownloadMount and those thumbnails
    sftp: SftpClient
    activity: Recorder = NO_RECORD  # where the documents made here are recorded


def file_paths(api: ApiSettings, root: Path, *, in_database: bool) -> FilePaths:
    if in_database:
        return FilePaths(root=None, separator=api.file_path_separator)
    return FilePaths(root=api.file_path_root or str(root), separator=api.file_path_separator)


def create_app(
    api: ApiSettings,
    parts: ApiParts,
    *,
    on_placeholder: Callable[[], None] | None = None,
    on_stored: OnStored | None = None,
    mounts: Mapping[str, ASGIApp] | None = None,
    home: str | None = None,
) -> FastAPI:
    """The API ``api`` describes over ``parts``: routes, error shapes, auth, limits.

    ``mounts`` are other applications served beside it under their own paths (the front-desk
    page at /ui): the API's key check leaves them alone, and they do their own. ``home``: where
    ``GET /`` sends a browser (one of them), without a key.

    ``on_placeholder`` is called after SetByUrl made a placeholder row: inside the daemon it
    wakes the materialiser, so the file is fetched now rather than at its next pass, and
    ``on_stored`` is its thumbnail queue, which Upload and UploadSftp then feed. Served on its
    own (``on_stored`` None), the API runs a thumbnail queue of its own while it serves.
    """
    if not parts.in_database:
        # Upload spools a killed process left in the root (see storage.spool).
        spool.sweep(parts.root)
    own_queue = None
    if on_stored is None:
        on_stored = no_thumbnails
        if parts.thumbnails:
            own_queue = ThumbnailWorker(
                parts.renderer, workers=default_workers(parts.thumbnail_workers)
            )
            on_stored = own_queue.submit
    service = DocumentService(
        parts.reader,
        parts.writer,
        parts.storage,
        paths=file_paths(api, parts.root, in_database=parts.in_database),
        max_upload_bytes=api.max_upload_bytes,
        in_database=parts.in_database,
        on_stored=on_stored,
        on_placeholder=on_placeholder,
        activity=parts.activity,
    )
    transfers = SftpService(
        parts.reader,
        service,
        sftp=parts.sftp,
        storage=parts.storage,
        root=parts.root,
        renderer=parts.renderer,
        composer=MountComposer(parts.reader, parts.storage, parts.root, parts.renderer),
        in_database=parts.in_database,
    )
    app = FastAPI(
        title="atoz-watcher Documents API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
        # A body without a Content-Type is read as JSON too: clients of Open Dental's API
        # that never sent one keep working.
        strict_content_type=False,
        lifespan=_closing(parts.reader, parts.engine, own_queue),
    )
    install_handlers(app)
    reads = ReadLane(threads=api.read_threads, wait_s=api.read_wait_seconds)
    app.include_router(build_router(service, transfers, max_limit=api.max_limit, reads=reads))
    public = {OPENAPI_PATH}
    if home is not None:
        app.add_api_route("/", _redirect_to(home), methods=["GET"], include_in_schema=False)
        public.add("/")
    for path, mounted in (mounts or {}).items():
        app.mount(path, mounted)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # The last added runs first: log, then authenticate, then cap the body.
    app.add_middleware(
        BodyCap,
        max_bytes=encoded_limit(api.max_upload_bytes) + BODY_SLACK,
        refusal=lambda: error_response(413, TOO_LARGE),
        overflow=lambda: HTTPException(413, TOO_LARGE),
    )
    app.add_middleware(
        Authenticator,
        checker=KeyChecker(api.keys),
        public=frozenset(public),
        own_auth=tuple(mounts or ()),
    )
    app.add_middleware(RequestLogger)
    return app


def _redirect_to(home: str) -> Callable[[], Awaitable[RedirectResponse]]:
    async def redirect() -> RedirectResponse:
        return RedirectResponse(home, status_code=303)

    return redirect


def _closing(
    reader: Engine, engine: Engine, thumbnails: ThumbnailWorker | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: its own thumbnail queue (if any) runs while it serves, and the
    reader's connections are closed when the server stops (the caller's ``engine`` is the
    caller's to dispose)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if thumbnails is not None:
            thumbnails.start()
        try:
            yield
        finally:
            if thumbnails is not None:
                # The uploads answered before the stop get their thumbnails, as they did
                # when each was rendered after its reply.
                await asyncio.to_thread(thumbnails.wait_idle, THUMBNAILS_DRAIN_S)
                thumbnails.close()
            if reader is not engine:
                reader.dispose()

    return lifespan


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema with our error shape: no 422, the ODFHIR scheme on every operation."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    # Upload reads its own body (upload_stream): its model is not a route parameter.
    upload = UploadRequest.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    for field in upload.get("properties", {}).values():
        if "default" in field and field["default"] is None:
            del field["default"]  # as FastAPI writes an optional field's schema
    schemas["UploadRequest"] = upload
    components["securitySchemes"] = {
        "ODFHIR": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "ODFHIR <DeveloperKey>/<CustomerKey>",
        }
    }
    schema["security"] = [{"ODFHIR": []}]
    app.openapi_schema = schema
    return schema
