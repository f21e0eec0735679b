"""The asyncssh side of the SFTP endpoints: connect, run one piece of work, map its errors.

Imported by ``sftp.SftpClient`` on the first transfer only, so that the API, the CLI and the
daemon never load asyncssh (nor cryptography) unless an SFTP endpoint is used. The host is
resolved and judged by the facade; this module connects to the addresses it was given, never
to a name.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, TypeVar, cast

import asyncssh

from atoz_watcher.config.sections import SftpSettings
from atoz_watcher.net.guard import IPAddress
from atoz_watcher.net.sftp_address import (
    DEFAULT_PORT,
    Credentials,
    Failure,
    SftpAddress,
    SftpError,
    is_ip_literal,
    target,
)

T = TypeVar("T")
CHUNK: Final = 256 * 1024
# After the deadline, the aborted session gets this long to unwind before it is left behind.
UNWIND_S: Final = 1.0

Session = asyncssh.SFTPClient


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


async def run(
    settings: SftpSettings,
    credentials: Credentials,
    addresses: Sequence[IPAddress],
    work: Callable[[Session], Awaitable[T]],
) -> T:
    """Connect to the first of ``addresses`` that answers (within ``connect_timeout``), then
    start an SFTP session, run ``work`` and close, all within ``transfer_timeout``.

    The deadline is kept from outside the session: when it passes, the connection is aborted
    (the TCP connection dropped: every request still waiting on the site fails at once). A
    cancellation would not do: the session's clean-ups (closing a remote file, the SFTP
    channel, the connection) each wait for the site's answer, and a stalled site never gives
    one.
    """
    conn = await _connect(settings, credentials, addresses)
    session = asyncio.ensure_future(_session(conn, work))
    try:
        done, _ = await asyncio.wait({session}, timeout=settings.transfer_timeout)
        if done:
            return _result(session, credentials.where)
        # Every request still waiting on the site now fails, so the session unwinds by
        # itself (its clean-ups fail fast too); cancelled only if it has not within UNWIND_S.
        conn.abort()
        await asyncio.wait({session}, timeout=UNWIND_S)
        if not session.done():
            session.cancel()
            await asyncio.wait({session}, timeout=UNWIND_S)
    finally:
        if session.done() and not session.cancelled():
            session.exception()  # retrieved: no "exception never retrieved" at loop close
        conn.abort()  # nothing left to close politely: drop it (a no-op once closed)
    raise SftpError(
        Failure.TIMEOUT,
        f"Timed out transferring with the SFTP site {credentials.where} "
        f"(after {settings.transfer_timeout:g} s)",
    )


def _result(session: asyncio.Future[T], where: str) -> T:
    try:
        return session.result()
    except SftpError:
        raise
    except Exception as exc:  # noqa: BLE001 - mapped to what failed, or re-raised
        raise _failure(exc, where) from None


async def _session(
    conn: asyncssh.SSHClientConnection, work: Callable[[Session], Awaitable[T]]
) -> T:
    async with conn.start_sftp_client() as sftp:
        result = await work(sftp)
    conn.close()
    await conn.wait_closed()
    return result


def _failure(exc: Exception, where: str) -> Exception:
    """An asyncssh or socket failure as the SftpError that says what failed; anything else
    as it is (the facade turns it into a 400 naming its type)."""
    if isinstance(exc, asyncssh.SFTPNoSuchFile):
        return SftpError(Failure.NOT_FOUND, _sftp_message(exc, "no such file"))
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return SftpError(Failure.PERMISSION, _sftp_message(exc, "permission denied"))
    if isinstance(exc, asyncssh.SFTPError):
        return SftpError(Failure.TRANSFER, _sftp_message(exc, "the server failed"))
    if isinstance(exc, asyncssh.Error | OSError | EOFError):
        reason = getattr(exc, "reason", None) or type(exc).__name__
        return SftpError(
            Failure.TRANSFER, f"The connection to the SFTP site {where} failed: {reason}"
        )
    return exc


async def read_file(sftp: Session, address: SftpAddress, limit: int) -> bytes:
    """The file at ``address``, at most ``limit`` bytes."""
    path = address.path
    if path.endswith("/"):
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


async def write_at(sftp: Session, address: SftpAddress, default_name: str, data: bytes) -> str:
    """Write ``data`` at ``address``; a folder address gets ``default_name``."""
    is_dir = not address.names_folder and await sftp.isdir(address.path)
    folder, name = target(address, default_name, is_dir=is_dir)
    return await write_into(sftp, folder, name, data)


async def write_many(sftp: Session, folder: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
    return [await write_into(sftp, folder, name, data) for name, data in files]


async def write_into(sftp: Session, folder: str, name: str, data: bytes) -> str:
    await sftp.makedirs(folder, exist_ok=True)
    path = posixpath.join(folder, name)
    async with sftp.open(path, "wb") as remote:  # "wb": an existing file is replaced
        await remote.write(data)
    return path


def _known_hosts(settings: SftpSettings) -> str | bytes:
    """The known_hosts file asyncssh reads, or empty content when there is none (every
    host is then unknown)."""
    path = settings.known_hosts or Path("~/.ssh/known_hosts").expanduser()
    return str(path) if path.is_file() else b""


async def _connect(
    settings: SftpSettings, credentials: Credentials, addresses: Sequence[IPAddress]
) -> asyncssh.SSHClientConnection:
    """A logged-in connection to the first of ``addresses`` that accepts one, all within
    ``connect_timeout``. An address that refuses the TCP connection passes to the next; a
    host key or login failure ends it."""
    where = credentials.where
    try:
        async with asyncio.timeout(settings.connect_timeout):
            for address in addresses[:-1]:
                try:
                    return await _connect_to(settings, credentials, address)
                except OSError:
                    continue
            return await _connect_to(settings, credentials, addresses[-1])
    except TimeoutError:
        raise SftpError(
            Failure.TIMEOUT,
            f"Timed out connecting to the SFTP site {where} (after {settings.connect_timeout:g} s)",
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


async def _connect_to(
    settings: SftpSettings, credentials: Credentials, address: IPAddress
) -> asyncssh.SSHClientConnection:
    """Connect to ``address`` (no name lookup), with the host key checked under the host's
    name as the client wrote it (``host_key_alias``) as well as under the address."""
    known_hosts = _known_hosts(settings)
    host = credentials.address.host
    return await asyncssh.connect(
        str(address),
        credentials.port,
        host_key_alias=None if is_ip_literal(host) else host,
        username=credentials.username,
        password=credentials.password,
        known_hosts=known_hosts,
        client_factory=lambda: _Client(known_hosts, trust_unknown=settings.trust_unknown_hosts),
        # Only the password the client sent: never the service's own keys, agent or
        # ~/.ssh/config.
        client_keys=None,
        agent_path=None,
        config=[],
        x509_trusted_certs=None,
        preferred_auth=("password", "keyboard-interactive"),
        connect_timeout=settings.connect_timeout,
        login_timeout=settings.connect_timeout,
    )


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
