"""``create_app(api, parts)``: the Documents API as a FastAPI application.

Its parts (storage, engines, writer, renderer, SFTP client) come built from the caller
(``atoz_watcher.app.wiring``, the one place that reads Settings); the routes' own objects are
built here and handed to them; nothing is global.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy import Engine

from atoz_watcher import __version__
from atoz_watcher.api.auth import KeyChecker
from atoz_watcher.api.errors import install_handlers
from atoz_watcher.api.middleware import Authenticator, BodyLimiter, RequestLogger
from atoz_watcher.api.models import UploadRequest
from atoz_watcher.api.present import FilePaths
from atoz_watcher.api.routes import PREFIX, build_router
from atoz_watcher.api.service import DocumentService
from atoz_watcher.api.transfers import SftpService
from atoz_watcher.api.upload_body import encoded_limit
from atoz_watcher.config.sections import ApiSettings
from atoz_watcher.documents.writer import DocumentWriter
from atoz_watcher.imaging.jobs import ThumbJob, carry_out
from atoz_watcher.imaging.mounts import MountComposer
from atoz_watcher.imaging.render import Renderer
from atoz_watcher.net.sftp import SftpClient
from atoz_watcher.storage import Storage, spool

OPENAPI_PATH = f"{PREFIX}/openapi.json"
# Room in a request body for the fields around rawBase64.
BODY_SLACK = 1024 * 1024
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
    thumbnails: bool  # an uploaded image gets its thumbnail, after the reply
    renderer: Renderer  # Thumbnails, DownloadMount and those thumbnails
    sftp: SftpClient


def file_paths(api: ApiSettings, root: Path, *, in_database: bool) -> FilePaths:
    if in_database:
        return FilePaths(root=None, separator=api.file_path_separator)
    return FilePaths(root=api.file_path_root or str(root), separator=api.file_path_separator)


class Thumbnailer:
    """Renders one uploaded image's thumbnail (after the reply has gone)."""

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer

    def __call__(self, job: ThumbJob) -> None:
        carry_out(job, self._renderer, force=True)


def create_app(
    api: ApiSettings,
    parts: ApiParts,
    *,
    on_placeholder: Callable[[], None] | None = None,
) -> FastAPI:
    """The API ``api`` describes over ``parts``: routes, error shapes, auth, limits.

    ``on_placeholder`` is called after SetByUrl made a placeholder row: inside the daemon it
    wakes the materialiser, so the file is fetched now rather than at its next pass.
    """
    if not parts.in_database:
        # Upload spools a killed process left in the root (see storage.spool).
        spool.sweep(parts.root)
    service = DocumentService(
        parts.reader,
        parts.writer,
        parts.storage,
        paths=file_paths(api, parts.root, in_database=parts.in_database),
        max_upload_bytes=api.max_upload_bytes,
        thumbnails=parts.thumbnails,
        in_database=parts.in_database,
        on_placeholder=on_placeholder,
    )
    render = Thumbnailer(parts.renderer)
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
        lifespan=_closing(parts.reader, parts.engine),
    )
    install_handlers(app)
    app.include_router(build_router(service, transfers, render=render, max_limit=api.max_limit))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # The last added runs first: log, then authenticate, then cap the body.
    app.add_middleware(BodyLimiter, max_bytes=encoded_limit(api.max_upload_bytes) + BODY_SLACK)
    app.add_middleware(
        Authenticator,
        checker=KeyChecker(api.keys),
        public=frozenset({OPENAPI_PATH}),
    )
    app.add_middleware(RequestLogger)
    return app


def _closing(
    reader: Engine, engine: Engine
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the reader's connections are closed when the server stops (the
    caller's ``engine`` is the caller's to dispose)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
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
