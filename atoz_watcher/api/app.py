"""``create_app(settings, engine)``: the Documents API as a FastAPI application.

Everything the routes need is built here and handed to them; nothing is global.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
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
from atoz_watcher.config.settings import Settings
from atoz_watcher.db.engine import read_engine
from atoz_watcher.documents.writer import DocumentWriter
from atoz_watcher.imaging.jobs import ThumbJob, carry_out
from atoz_watcher.imaging.mounts import MountComposer
from atoz_watcher.imaging.render import Renderer, thumbnail_renderer
from atoz_watcher.net.sftp import SftpClient
from atoz_watcher.storage import spool, storage_for
from atoz_watcher.system.membudget import MemoryBudget

OPENAPI_PATH = f"{PREFIX}/openapi.json"
# Room in a request body for the fields around rawBase64.
BODY_SLACK = 1024 * 1024
DESCRIPTION = (
    "Open Dental's Documents API (GET, Upload, SetByUrl, UploadSftp, DownloadSftp, Thumbnails, "
    "DownloadMount), served by atoz-watcher. "
    "Every endpoint needs `Authorization: ODFHIR <DeveloperKey>/<CustomerKey>`. "
    "Errors are a JSON string."
)


def file_paths(settings: Settings) -> FilePaths:
    if settings.storage == "InDatabase":
        return FilePaths(root=None, separator=settings.api.file_path_separator)
    root = settings.api.file_path_root or str(settings.atoz_path)
    return FilePaths(root=root, separator=settings.api.file_path_separator)


class Thumbnailer:
    """Renders one uploaded image's thumbnail (after the reply has gone)."""

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer

    def __call__(self, job: ThumbJob) -> None:
        carry_out(job, self._renderer, force=True)


def create_app(
    settings: Settings,
    engine: Engine,
    *,
    on_placeholder: Callable[[], None] | None = None,
    budget: MemoryBudget | None = None,
) -> FastAPI:
    """The API for ``settings`` over ``engine``: routes, error shapes, auth, limits.

    ``on_placeholder`` is called after SetByUrl made a placeholder row: inside the daemon it
    wakes the materialiser, so the file is fetched now rather than at its next pass, and
    ``budget`` is its thumbnail memory budget, which the API's rendering then shares.
    """
    storage = storage_for(settings)
    if settings.storage == "LocalAtoZ":
        # Upload spools a killed process left in the root (see storage.spool).
        spool.sweep(settings.atoz_path)
    # Writes take the registration lock through ``engine``; reads never wait for it.
    reader = read_engine(engine)
    writer = DocumentWriter(engine, storage, lock_timeout_s=settings.scan.lock_timeout)
    thumbnails = settings.thumbnails.enabled and settings.storage == "LocalAtoZ"
    service = DocumentService(
        reader,
        writer,
        storage,
        paths=file_paths(settings),
        max_upload_bytes=settings.api.max_upload_bytes,
        thumbnails=thumbnails,
        in_database=settings.storage == "InDatabase",
        on_placeholder=on_placeholder,
    )
    renderer = thumbnail_renderer(settings.thumbnails, budget=budget)
    render = Thumbnailer(renderer)
    transfers = SftpService(
        reader,
        service,
        sftp=SftpClient(settings.sftp),
        storage=storage,
        root=settings.atoz_path,
        renderer=renderer,
        composer=MountComposer(reader, storage, settings.atoz_path, renderer),
        in_database=settings.storage == "InDatabase",
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
        lifespan=_closing(reader, engine),
    )
    install_handlers(app)
    app.include_router(
        build_router(service, transfers, render=render, max_limit=settings.api.max_limit)
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # The last added runs first: log, then authenticate, then cap the body.
    app.add_middleware(
        BodyLimiter, max_bytes=encoded_limit(settings.api.max_upload_bytes) + BODY_SLACK
    )
    app.add_middleware(
        Authenticator,
        checker=KeyChecker(settings.api.keys),
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
