"""A document's thumbnail and its file, for the pages' pictures and links.

The file is read through the storage (LocalAtoZ: from the patient's folder, never through a
link; InDatabase: from RawBase64); a file that cannot be read this way is a 404 page.
"""

from __future__ import annotations

import mimetypes
from typing import Final
from urllib.parse import quote

import structlog
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from atoz_watcher.db import queries
from atoz_watcher.rules.layout import folder_name
from atoz_watcher.rules.naming import plain
from atoz_watcher.system.contained import LinkRefusedError, NotRegularError, OutsideRootError
from atoz_watcher.ui.parts import UiParts
from atoz_watcher.ui.preview import Previews
from atoz_watcher.ui.web import LoggedIn, Refused, Web

log = structlog.get_logger("atoz_watcher.ui")

# Served as themselves, shown by the browser; anything else (HTML, SVG, scripts a folder may
# hold) goes as bytes to save, never as a page of this site.
_SHOWN: Final = frozenset(
    {
        "application/pdf",
        "image/bmp",
        "image/gif",
        "image/jpeg",
        "image/png",
        "image/tiff",
        "image/webp",
        "text/plain",
    }
)
_UNREADABLE: Final = (
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    NotRegularError,
    LinkRefusedError,
    OutsideRootError,
    ValueError,  # an unsafe name, RawBase64 that is not base64
)
_NOT_STORED: Final = "This document has no file to show (not stored yet, or missing)."


def router(parts: UiParts, web: Web) -> APIRouter:
    del web  # these routes answer with files; refusals go through the shell's error page
    api = APIRouter()
    previews = Previews.of(parts)

    @api.get("/documents/{doc_num}/thumbnail", response_model=None)
    def thumbnail(doc_num: int, viewer: LoggedIn) -> Response:
        picture = previews.thumbnail(doc_num)
        if picture is None:
            raise Refused(404, f"No document {doc_num}.", viewer)
        return Response(
            picture.data, media_type=picture.media_type, headers={"Cache-Control": "no-store"}
        )

    @api.get("/documents/{doc_num}/file", response_model=None)
    def document_file(doc_num: int, viewer: LoggedIn) -> Response | HTMLResponse:
        with parts.reader.connect() as conn:
            source = queries.document_source(conn, doc_num=doc_num, with_raw=parts.in_database)
        if source is None:
            raise Refused(404, f"No document {doc_num}.", viewer)
        if not source.file_name or (parts.in_database and not source.raw_base64):
            raise Refused(404, _NOT_STORED, viewer)
        if not plain(source.file_name):
            raise Refused(
                404,
                "This document's file name could lead out of the patient's folder: refused.",
                viewer,
            )
        folder = source.image_folder or folder_name(source.lname, source.fname, source.pat_num)
        try:
            data = parts.storage.read(
                folder=folder, file_name=source.file_name, raw_base64=source.raw_base64
            )
        except LinkRefusedError:
            log.info("ui.file_refused", docnum=doc_num, reason="link")
            raise Refused(
                404,
                "This document's file or folder is a link: refused, it could lead anywhere.",
                viewer,
            ) from None
        except _UNREADABLE as exc:
            log.info("ui.file_unreadable", docnum=doc_num, reason=type(exc).__name__)
            raise Refused(404, _NOT_STORED, viewer) from None
        return Response(data, media_type=_media_type(source.file_name), headers=_inline(source))

    return api


def _media_type(file_name: str) -> str:
    guessed, _ = mimetypes.guess_type(file_name, strict=False)
    return guessed if guessed in _SHOWN else "application/octet-stream"


def _inline(source: queries.DocumentSource) -> dict[str, str]:
    name = quote(source.file_name, safe="")
    return {
        "Content-Disposition": f"inline; filename*=UTF-8''{name}",
        "Cache-Control": "no-store",
    }
