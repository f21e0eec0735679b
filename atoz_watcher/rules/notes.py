"""Placeholder Notes: what a ``_rawBase64_:`` or ``_download_:`` row asks for, and our errors.

Open Dental's API does not store an Upload or a SetByUrl file at once: it writes a ``document``
row with no FileName and a Note of ``_rawBase64_:`` + extension + ``_`` + base64, or
``_download_:`` + URL. This module reads such a Note and decodes a base64 payload; it touches
no network (downloads are ``atoz_watcher.net.download``'s) and imports no HTTP client, so the daemon
pays for one only when a download happens.

Nothing here ever quotes a payload, nor a URL's user name, password or query string (signed
URLs carry their credentials there).
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass
from typing import Final

from atoz_watcher.errors import AtozError

# The Note prefixes of a placeholder, as Open Dental's API writes them.
RAW_BASE64_NOTE: Final = "_rawBase64_:"
DOWNLOAD_NOTE: Final = "_download_:"

_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}")
_BASE64_WHITESPACE = re.compile(r"\s+")
_SHOWN: Final = 20  # characters of a bad extension quoted in its error


class Failure(enum.StrEnum):
    """Why a placeholder was not materialised; also the outcome reported for the metric."""

    BAD_NOTE = "bad_note"  # malformed Note, unsafe extension, bad base64
    REFUSED = "refused"  # netguard: scheme, internal address
    HTTP_ERROR = "http_error"  # a non-2xx status, too many redirects
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    NETWORK = "network"  # cannot resolve or connect, the connection broke
    PATIENT_MISSING = "patient_missing"
    STORAGE = "storage"  # the file could not be written
    ERROR = "error"  # anything unforeseen (logged with its traceback)


class MaterializeError(AtozError):
    def __init__(self, kind: Failure, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(f"{kind}: {reason}")


class BadNoteError(MaterializeError):
    def __init__(self, reason: str) -> None:
        super().__init__(Failure.BAD_NOTE, reason)


class StoppedError(AtozError):
    """The pass was asked to stop in the middle of a download; nothing is counted."""


@dataclass(frozen=True, slots=True)
class RawBase64Note:
    extension: str
    payload: str  # base64, as stored; decoded by decode_payload

    def __repr__(self) -> str:  # a repr must never carry a whole file into a log or traceback
        return f"RawBase64Note(extension={self.extension!r}, payload=<{len(self.payload)} chars>)"


@dataclass(frozen=True, slots=True)
class DownloadNote:
    url: str


def is_safe_extension(extension: str) -> bool:
    """A dot and 1-10 ASCII letters or digits (``.jpg``, ``.docx``)."""
    return _EXTENSION.fullmatch(extension) is not None


def parse_note(note: str) -> RawBase64Note | DownloadNote | None:
    """What a placeholder's Note asks for; None when the Note is no placeholder.

    The prefixes are matched exactly, as Open Dental does. Raises BadNoteError for a
    placeholder that cannot be used (its reason never quotes the payload).
    """
    if note.startswith(RAW_BASE64_NOTE):
        extension, separator, payload = note[len(RAW_BASE64_NOTE) :].partition("_")
        if not separator:
            raise BadNoteError("a _rawBase64_ note without the '_' after its extension")
        if not is_safe_extension(extension):
            shown = extension if len(extension) <= _SHOWN else f"{extension[:_SHOWN]}..."
            raise BadNoteError(
                f"unsafe extension {shown!r} (a dot and 1-10 letters or digits expected)"
            )
        return RawBase64Note(extension=extension, payload=payload)
    if note.startswith(DOWNLOAD_NOTE):
        url = note[len(DOWNLOAD_NOTE) :].strip()
        if not url:
            raise BadNoteError("a _download_ note without a URL")
        return DownloadNote(url=url)
    return None


def decode_payload(note: RawBase64Note, *, max_bytes: int) -> bytes:
    """The file a ``_rawBase64_`` note holds.

    Whitespace is ignored, as .NET's Convert.FromBase64String ignores it; anything else that
    is not base64 is an error, never silently dropped.
    """
    payload = _BASE64_WHITESPACE.sub("", note.payload)
    if not payload:
        raise BadNoteError("the _rawBase64_ note holds no data")
    if len(payload) // 4 * 3 > max_bytes + 2:
        raise MaterializeError(
            Failure.TOO_LARGE, f"about {len(payload) // 4 * 3} bytes, more than {max_bytes}"
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadNoteError(f"the payload ({len(payload)} characters) is not valid base64") from None
    if len(data) > max_bytes:
        raise MaterializeError(Failure.TOO_LARGE, f"{len(data)} bytes, more than {max_bytes}")
    return data


def redact_url(url: str) -> str:
    """``url`` fit for a log line: no user name or password, no query string or fragment.

    Plain string work, not ``urllib.parse.urlsplit``: that would raise on a malformed IPv6
    host (``http://[::1/x``), read ``user:pw@host/x`` as the scheme ``user`` (leaving the
    password in), and drop tabs and newlines; a log line must show any Note, never fail on one.
    """
    text = url.split("#", 1)[0].split("?", 1)[0]
    scheme, slashes, rest = text.partition("//")
    if not slashes:
        scheme, rest = "", text
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = authority.rpartition("@")[2]
    return f"{scheme}{slashes}{authority}{slash}{path}"
