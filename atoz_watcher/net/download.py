"""Downloads for ``_download_:`` placeholders, under netguard; the only user of httpx.

Imported when the first download note is seen, not before: ``import httpx`` costs the daemon
about 18 MB, and most practices never get a SetByUrl row.

Downloads go through ``netguard``: http(s) only, no internal address unless allow-listed,
checked on every redirect hop (at most 5) and again where the connection is opened. Each
download has a size limit (Content-Length first, then while streaming) and a total time limit,
redirects and body included, enforced from outside by ``guarded_http.Cutoff``: when it passes,
the connection is dropped, whatever the server is doing (a byte a second included). Every failure
leaves here as a MaterializeError (or StoppedError), never as an httpx exception.

The extension of a downloaded file is, in order:
1. the suffix of the URL's path (the final URL after redirects, then the original), when it is
   a safe extension (a dot and 1-10 letters or digits) and not a web program's (``.php``...);
2. the Content-Type's (``image/jpeg`` -> ``.jpg``, ``application/pdf`` -> ``.pdf``...);
3. the content's own signature (JPEG, PNG, GIF, TIFF, BMP, WebP, PDF, DICOM);
4. none: the file is still stored (``SmithJohn12``), never dropped for want of a name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

import httpx

from atoz_watcher import __version__
from atoz_watcher.config.sections import MaterializerSettings
from atoz_watcher.net.guard import NetGuard, RefusedError, Resolver, system_resolver
from atoz_watcher.net.guarded_http import Cutoff, GuardedTransport
from atoz_watcher.rules.notes import (
    Failure,
    MaterializeError,
    StoppedError,
    is_safe_extension,
    redact_url,
)
from atoz_watcher.system.deadline import DeadlineExceededError, call_within

MAX_REDIRECTS: Final = 5
# Per-step network limits, within the total ``timeout``: a dead host fails fast, a silent one
# sooner than the total. The total itself is the Cutoff's.
CONNECT_S: Final = 5.0
READ_S: Final = 10.0

# Path suffixes that name the program serving the file, not the file.
_PROGRAM_SUFFIXES: Final = frozenset(
    {".php", ".asp", ".aspx", ".ashx", ".jsp", ".cgi", ".pl", ".py", ".htm", ".html", ".do"}
)
_BY_CONTENT_TYPE: Final = {
    "image/jpeg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/x-ms-bmp": ".bmp",
    "image/tiff": ".tif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "application/dicom": ".dcm",
    "text/plain": ".txt",
    "application/rtf": ".rtf",
    "text/rtf": ".rtf",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}
_SIGNATURES: Final = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"%PDF-", ".pdf"),
)
_BMP_HEADER: Final = 14


def _signature_extension(data: bytes) -> str:
    for magic, extension in _SIGNATURES:
        if data.startswith(magic):
            return extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[128:132] == b"DICM":
        return ".dcm"
    # "BM" alone is too weak: a BMP also states its own length in bytes 2-5.
    if (
        data[:2] == b"BM"
        and len(data) >= _BMP_HEADER
        and int.from_bytes(data[2:6], "little") == len(data)
    ):
        return ".bmp"
    return ""


def extension_for(urls: tuple[httpx.URL, ...], content_type: str, data: bytes) -> str:
    """The extension a downloaded file is stored with (the module docstring gives the order)."""
    for url in urls:
        suffix = PurePosixPath(url.path).suffix.lower()
        if is_safe_extension(suffix) and suffix not in _PROGRAM_SUFFIXES:
            return suffix
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _BY_CONTENT_TYPE:
        return _BY_CONTENT_TYPE[media_type]
    return _signature_extension(data)


@dataclass(frozen=True, slots=True)
class Download:
    data: bytes
    extension: str
    url: httpx.URL  # where the bytes came from, after redirects


def _never() -> bool:
    return False


def _within(resolver: Resolver, cutoff: Cutoff) -> Resolver:
    """``resolver`` answering within what is left of the download's deadline (TimeoutError,
    an OSError, otherwise: a lookup that overran is left to end by itself)."""

    def resolve(host: str, port: int) -> Sequence[str]:
        try:
            return call_within(
                lambda: list(resolver(host, port)), cutoff.remaining(), name="atoz-resolve"
            )
        except DeadlineExceededError:
            raise TimeoutError(
                f"no answer looking up {host} within the download's {cutoff.seconds:g} s"
            ) from None

    return resolve


class Downloader:
    """GETs a URL under netguard, following at most MAX_REDIRECTS redirects itself."""

    def __init__(
        self,
        allow_hosts: Sequence[str],
        *,
        resolver: Resolver = system_resolver,
        timeout: float,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allow_hosts = tuple(allow_hosts)
        self._resolver = resolver
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._clock = clock

    def fetch(self, url: str, *, should_stop: Callable[[], bool] = _never) -> Download:
        """The file at ``url``; raises MaterializeError (or StoppedError)."""
        deadline = self._clock() + self._timeout
        with Cutoff(self._timeout) as cutoff:
            # Name lookups within the deadline too: the C library's own limits are its own.
            guard = NetGuard(self._allow_hosts, resolver=_within(self._resolver, cutoff))
            return self._fetch(url, guard, cutoff, deadline=deadline, should_stop=should_stop)

    def _fetch(
        self,
        url: str,
        guard: NetGuard,
        cutoff: Cutoff,
        *,
        deadline: float,
        should_stop: Callable[[], bool],
    ) -> Download:
        first = self._checked(guard, url)
        current = first
        # A client per download: nothing (connections, cookies) is shared between documents.
        with httpx.Client(
            transport=GuardedTransport(guard, cutoff),
            trust_env=False,  # no proxy from the environment: it would resolve names itself
            follow_redirects=False,  # each hop is checked here, before it is requested
            headers={
                # The file as stored: no compressed transfer to inflate (no gzip bomb).
                "Accept-Encoding": "identity",
                "User-Agent": f"atoz-watcher/{__version__}",
            },
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                response_url, location, download = self._get(
                    client, current, deadline=deadline, cutoff=cutoff, should_stop=should_stop
                )
                if download is not None:
                    data, content_type = download
                    extension = extension_for((response_url, first), content_type, data)
                    return Download(data=data, extension=extension, url=response_url)
                try:
                    current = self._checked(guard, response_url.join(location))
                except httpx.InvalidURL:
                    raise MaterializeError(
                        Failure.HTTP_ERROR,
                        f"{redact_url(str(response_url))} redirects to a bad URL",
                    ) from None
        raise MaterializeError(
            Failure.HTTP_ERROR, f"more than {MAX_REDIRECTS} redirects from {redact_url(str(first))}"
        )

    def _checked(self, guard: NetGuard, url: str | httpx.URL) -> httpx.URL:
        try:
            return guard.check_url(url)
        except RefusedError as exc:
            raise MaterializeError(Failure.REFUSED, exc.reason) from None
        except TimeoutError as exc:  # the lookup outlasted the deadline
            raise MaterializeError(Failure.TIMEOUT, str(exc)) from None
        except OSError as exc:
            raise MaterializeError(Failure.NETWORK, f"cannot resolve: {exc}") from None

    def _timeouts(self, deadline: float) -> httpx.Timeout:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise MaterializeError(Failure.TIMEOUT, f"took longer than {self._timeout:g} s")
        connect, read = min(CONNECT_S, remaining), min(READ_S, remaining)
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)

    def _get(
        self,
        client: httpx.Client,
        url: httpx.URL,
        *,
        deadline: float,
        cutoff: Cutoff,
        should_stop: Callable[[], bool],
    ) -> tuple[httpx.URL, str, tuple[bytes, str] | None]:
        """One hop: (its URL, the redirect's Location or "", (data, Content-Type) or None)."""
        shown = redact_url(str(url))
        cut = MaterializeError(
            Failure.TIMEOUT,
            f"took longer than {self._timeout:g} s fetching {shown} (connection dropped)",
        )
        try:
            with client.stream("GET", url, timeout=self._timeouts(deadline)) as response:
                if response.is_redirect:
                    return response.url, response.headers["location"], None
                if not response.is_success:
                    raise MaterializeError(
                        Failure.HTTP_ERROR, f"HTTP {response.status_code} from {shown}"
                    )
                data = self._read(response, deadline=deadline, should_stop=should_stop)
                # A body without Content-Length ends when the connection does: a dropped one
                # would look complete.
                if cutoff.fired:
                    raise cut
                return response.url, "", (data, response.headers.get("content-type", ""))
        except RefusedError as exc:  # the connect-time check (a name that changed its answer)
            raise MaterializeError(Failure.REFUSED, exc.reason) from None
        except httpx.TimeoutException:
            raise (cut if cutoff.fired else self._timed_out(shown)) from None
        except httpx.HTTPError as exc:
            if cutoff.fired:  # the dropped connection, as httpx saw it
                raise cut from None
            # httpx's messages name the failure ("[Errno 111] Connection refused"), not the URL.
            raise MaterializeError(
                Failure.NETWORK, f"{type(exc).__name__} fetching {shown}: {exc}"
            ) from None

    def _timed_out(self, shown: str) -> MaterializeError:
        return MaterializeError(Failure.TIMEOUT, f"timed out fetching {shown}")

    def _read(
        self, response: httpx.Response, *, deadline: float, should_stop: Callable[[], bool]
    ) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise MaterializeError(
                Failure.TOO_LARGE, f"Content-Length {declared} is more than {self._max_bytes}"
            )
        data = bytearray()
        # Whatever each read brings (not 64 KiB pieces): the limits are checked as it arrives.
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > self._max_bytes:
                raise MaterializeError(
                    Failure.TOO_LARGE, f"more than {self._max_bytes} bytes (download cut)"
                )
            if self._clock() > deadline:
                raise MaterializeError(Failure.TIMEOUT, f"took longer than {self._timeout:g} s")
            if should_stop():
                raise StoppedError("stopped during a download")
        return bytes(data)


def downloader_for(
    settings: MaterializerSettings, *, resolver: Resolver | None = None
) -> Downloader:
    """The Downloader ``settings`` ask for (allow_hosts, timeout, size limit)."""
    return Downloader(
        settings.allow_hosts,
        resolver=system_resolver if resolver is None else resolver,
        timeout=settings.timeout,
        max_bytes=settings.max_download_bytes,
    )
