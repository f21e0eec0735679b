"""An SFTP client for the API's SFTP endpoints, on asyncssh, behind a synchronous facade.

asyncssh, not paramiko: one maintained, typed SSH stack serves both this client and the tests'
real in-process SFTP server. The API runs its endpoints in a thread pool; each call here runs
its own short-lived event loop (``asyncio.run``) in the calling thread, so there is no global
loop and nothing outlives the call.

An ``SftpAddress`` is Open Dental's ``host/path...`` (``MySftpSite/myUsername/Documents/x.png``):
everything before the first ``/`` is the host, everything after it is the path, rooted at the
server's ``/`` (``/myUsername/Documents/x.png``). An IPv6 host is written in brackets
(``[::1]/x.png``).

Passwords are never logged, and never part of an error's message.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import os
import posixpath
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar, cast

import asyncssh
import structlog

from atoz_watcher.config import SftpSettings

log = structlog.get_logger("atoz_watcher.sftp")

T = TypeVar("T")

DEFAULT_PORT: Final = 22
CHUNK: Final = 256 * 1024
MAX_ADDRESS_CHARS: Final = 4096
# A host as written: a name or IPv4 address, or an IPv6 address in brackets.
# A host name is dot-separated labels, none empty (so never ".." or "."), or [an IPv6 address].
_HOST = re.compile(
    r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?|\[[0-9A-Fa-f:.%A-Za-z]{2,64}\]", re.ASCII
)
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}", re.ASCII)


class Failure(enum.StrEnum):
    ADDRESS = "address"  # SftpAddress is not host/path
    REFUSED_HOST = "refused-host"  # not in [sftp] allow_hosts: never connected
    CONNECT = "connect"  # no TCP connection, or the SSH handshake failed
    HOST_KEY = "host-key"  # the server's host key is not in known_hosts, or differs
    AUTH = "auth"  # user name or password refused
    NOT_FOUND = "not-found"
    PERMISSION = "permission"
    TOO_LARGE = "too-large"
    TIMEOUT = "timeout"
    TRANSFER = "transfer"  # any other SFTP or SSH failure during the transfer


class SftpError(Exception):
    """What failed, as a kind and a message a client can act on (never a password)."""

    def __init__(self, kind: Failure, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SftpAddress:
    host: str  # without brackets for IPv6
    path: str  # absolute, "/" at least; ends with "/" when the client wrote one

    @property
    def names_folder(self) -> bool:
        """Written as a folder: it ends with ``/``, or its last part has no extension."""
        return self.path.endswith("/") or not _EXTENSION.fullmatch(posixpath.splitext(self.path)[1])

    @property
    def file_name(self) -> str:
        """The last part of the path ("" for a folder written with a trailing ``/``)."""
        return posixpath.basename(self.path)


def parse_address(address: str) -> SftpAddress:
    """``host/path...`` -> host and the absolute path on the server."""
    if not address or len(address) > MAX_ADDRESS_CHARS:
        raise SftpError(Failure.ADDRESS, f"SftpAddress must be 1 to {MAX_ADDRESS_CHARS} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in address):  # noqa: PLR2004 - ASCII controls
        raise SftpError(Failure.ADDRESS, "SftpAddress must not contain control characters")
    host, _, rest = address.partition("/")
    if not _HOST.fullmatch(host):
        raise SftpError(
            Failure.ADDRESS,
            "SftpAddress must start with the SFTP site's host name or IP address, then the "
            "path (MySftpSite/folder/file.png)",
        )
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SftpError(
                Failure.ADDRESS, "SftpAddress: an address in brackets must be IPv6"
            ) from None
    return SftpAddress(host=host, path="/" + rest)


def host_allowed(host: str, allow_hosts: Sequence[str]) -> bool:
    """Is ``host`` (as written) allowed? Empty list: every host. Names compare without case;
    IP addresses by value (``::1`` is ``0::1``). Names are never resolved here."""
    if not allow_hosts:
        return True
    wanted = _ip(host)
    for allowed in allow_hosts:
        if allowed.lower() == host.lower():
            return True
        if wanted is not None and _ip(allowed.strip("[]")) == wanted:
            return True
    return False


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class _Client(asyncssh.SSHClient):
    """Decides on a host key that known_hosts does not list: trusted only when the host is
    not listed at all and unknown hosts are trusted. A listed host with another key is never
    accepted."""

    def __init__(self, known_hosts: str | bytes, *, trust_unknown: bool) -> None:
        self._known_hosts = known_hosts
        self._trust_unknown = trust_unknown

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        del key
        if not self._trust_unknown:
            return False
        listed = asyncssh.match_known_hosts(
            self._known_hosts, host, addr, None if port == DEFAULT_PORT else port
        )
        return not (listed[0] or listed[1])


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where to connect and as whom. The password never shows in a repr."""

    address: SftpAddress
    port: int
    username: str
    password: str

    def __repr__(self) -> str:
        return (
            f"Credentials(host={self.address.host!r}, port={self.port}, "
            f"username={self.username!r}, password='***')"
        )

    @property
    def where(self) -> str:
        host = f"[{self.address.host}]" if ":" in self.address.host else self.address.host
        return f"{host}:{self.port}"


class SftpClient:
    """Fetches and puts files on a client's SFTP site; one connection per call."""

    def __init__(self, settings: SftpSettings) -> None:
        self._settings = settings

    def credentials(
        self, address: str, port: int | None, username: str, password: str
    ) -> Credentials:
        """Parse and check the address; a host outside ``allow_hosts`` is refused here, before
        any connection or DNS lookup."""
        parsed = parse_address(address)
        if not host_allowed(parsed.host, self._settings.allow_hosts):
            raise SftpError(
                Failure.REFUSED_HOST,
                f"The SFTP host {parsed.host} is not allowed here ([sftp] allow_hosts)",
            )
        return Credentials(
            address=parsed, port=port or DEFAULT_PORT, username=username, password=password
        )

    def fetch(self, credentials: Credentials) -> bytes:
        """The file at the address, at most ``max_bytes``."""
        limit = self._settings.max_bytes
        path = credentials.address.path

        async def fetch(sftp: asyncssh.SFTPClient) -> bytes:
            if credentials.address.path.endswith("/"):
                raise SftpError(Failure.NOT_FOUND, f"SFTP: {path} is a folder, not a file")
            attrs = await sftp.stat(path)
            if attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
                raise SftpError(Failure.NOT_FOUND, f"SFTP: {path} is a folder, not a file")
            if attrs.size is not None and attrs.size > limit:
                raise _too_large(path, limit)
            chunks: list[bytes] = []
            received = 0
            async with sftp.open(path, "rb") as remote:
                while chunk := cast("bytes", await remote.read(CHUNK)):
                    received += len(chunk)
                    if received > limit:  # it grew while we read it
                        raise _too_large(path, limit)
                    chunks.append(chunk)
            return b"".join(chunks)

        return self._run(credentials, fetch, action="download")

    def put(self, credentials: Credentials, data: bytes, *, default_name: str) -> str:
        """Write ``data`` at the address, creating folders and replacing a file of that name.

        A folder address (ending in ``/``, a last part without an extension, or an existing
        folder) gets ``default_name``. Returns the path written.
        """
        _require_plain(default_name)
        address = credentials.address

        async def put(sftp: asyncssh.SFTPClient) -> str:
            is_dir = not address.names_folder and await sftp.isdir(address.path)
            folder, name = target(address, default_name, is_dir=is_dir)
            return await _write(sftp, folder, name, data)

        return self._run(credentials, put, action="upload")

    def put_many(self, credentials: Credentials, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """Write each (name, data) into the folder the address names, over one connection."""
        for name, _ in files:
            _require_plain(name)
        folder = credentials.address.path.rstrip("/") or "/"

        async def put_many(sftp: asyncssh.SFTPClient) -> list[str]:
            return [await _write(sftp, folder, name, data) for name, data in files]

        return self._run(credentials, put_many, action="upload")

    def _run(
        self,
        credentials: Credentials,
        work: Callable[[asyncssh.SFTPClient], Awaitable[T]],
        *,
        action: str,
    ) -> T:
        fields = {"host": credentials.address.host, "port": credentials.port, "action": action}
        try:
            # A private event loop for this call, in the calling (thread-pool) thread.
            result = asyncio.run(self._session(credentials, work))
        except SftpError as exc:
            log.info("sftp.failed", kind=str(exc.kind), **fields)
            raise
        except Exception as exc:  # noqa: BLE001 - whatever a remote server does is a 400
            # Never a 500 for whatever a remote server does; the type names the surprise.
            log.warning("sftp.unexpected", error=type(exc).__name__, **fields)
            raise SftpError(
                Failure.TRANSFER,
                f"The transfer with the SFTP site {credentials.where} failed "
                f"({type(exc).__name__})",
            ) from None
        log.info("sftp.done", **fields)
        return result

    async def _session(
        self, credentials: Credentials, work: Callable[[asyncssh.SFTPClient], Awaitable[T]]
    ) -> T:
        conn = await self._connect(credentials)
        try:
            async with (
                asyncio.timeout(self._settings.transfer_timeout),
                conn.start_sftp_client() as sftp,
            ):
                return await work(sftp)
        except TimeoutError:
            raise SftpError(
                Failure.TIMEOUT,
                f"Timed out transferring with the SFTP site {credentials.where} "
                f"(after {self._settings.transfer_timeout:g} s)",
            ) from None
        except SftpError:
            raise
        except asyncssh.SFTPNoSuchFile as exc:
            raise SftpError(Failure.NOT_FOUND, _sftp_message(exc, "no such file")) from None
        except asyncssh.SFTPPermissionDenied as exc:
            raise SftpError(Failure.PERMISSION, _sftp_message(exc, "permission denied")) from None
        except asyncssh.SFTPError as exc:
            raise SftpError(Failure.TRANSFER, _sftp_message(exc, "the server failed")) from None
        except (asyncssh.Error, OSError, EOFError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise SftpError(
                Failure.TRANSFER,
                f"The connection to the SFTP site {credentials.where} failed: {reason}",
            ) from None
        finally:
            conn.close()
            await conn.wait_closed()

    def _known_hosts(self) -> str | bytes:
        """The known_hosts file asyncssh reads, or empty content when there is none (every
        host is then unknown)."""
        path = self._settings.known_hosts or Path("~/.ssh/known_hosts").expanduser()
        return str(path) if path.is_file() else b""

    async def _connect(self, credentials: Credentials) -> asyncssh.SSHClientConnection:
        known_hosts = self._known_hosts()
        where = credentials.where
        try:
            async with asyncio.timeout(self._settings.connect_timeout):
                return await asyncssh.connect(
                    credentials.address.host,
                    credentials.port,
                    username=credentials.username,
                    password=credentials.password,
                    known_hosts=known_hosts,
                    client_factory=lambda: _Client(
                        known_hosts, trust_unknown=self._settings.trust_unknown_hosts
                    ),
                    # Only the password the client sent: never the service's own keys, agent
                    # or ~/.ssh/config.
                    client_keys=None,
                    agent_path=None,
                    config=[],
                    x509_trusted_certs=None,
                    preferred_auth=("password", "keyboard-interactive"),
                    connect_timeout=self._settings.connect_timeout,
                    login_timeout=self._settings.connect_timeout,
                )
        except TimeoutError:
            raise SftpError(
                Failure.TIMEOUT,
                f"Timed out connecting to the SFTP site {where} "
                f"(after {self._settings.connect_timeout:g} s)",
            ) from None
        except asyncssh.HostKeyNotVerifiable:
            raise SftpError(
                Failure.HOST_KEY,
                f"The SFTP site {where} has a host key that is not trusted here: add it to "
                "the known_hosts file ([sftp] known_hosts)",
            ) from None
        except asyncssh.PermissionDenied:
            raise SftpError(
                Failure.AUTH, f"The SFTP site {where} refused the user name or password"
            ) from None
        except asyncssh.Error as exc:
            raise SftpError(
                Failure.CONNECT, f"Could not connect to the SFTP site {where}: {exc.reason}"
            ) from None
        except OSError as exc:
            raise SftpError(
                Failure.CONNECT, f"Could not connect to the SFTP site {where}: {_os_reason(exc)}"
            ) from None


def target(address: SftpAddress, name: str, *, is_dir: bool) -> tuple[str, str]:
    """(folder, file name) for writing a file whose own name is ``name`` at ``address``."""
    if address.names_folder or is_dir:
        return address.path.rstrip("/") or "/", name
    folder, file_name = posixpath.split(address.path)
    return folder or "/", file_name


async def _write(sftp: asyncssh.SFTPClient, folder: str, name: str, data: bytes) -> str:
    await sftp.makedirs(folder, exist_ok=True)
    path = posixpath.join(folder, name)
    async with sftp.open(path, "wb") as remote:  # "wb": an existing file is replaced
        await remote.write(data)
    return path


def _require_plain(name: str) -> None:
    if name in {"", ".", ".."} or any(c in name for c in "/\\\0"):
        raise SftpError(Failure.TRANSFER, f"Not a file name the SFTP site can take: {name!r}")


def _os_reason(exc: OSError) -> str:
    """ "Connection refused", not asyncio's "Connect call failed ('127.0.0.1', 22)"."""
    if isinstance(exc, socket.gaierror):
        return f"the host name could not be resolved ({exc.strerror})"
    if exc.errno and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__


def _too_large(path: str, limit: int) -> SftpError:
    return SftpError(Failure.TOO_LARGE, f"SFTP: {path} is larger than the limit of {limit} bytes")


def _sftp_message(exc: asyncssh.SFTPError, default: str) -> str:
    return f"SFTP: {exc.reason or default}"
