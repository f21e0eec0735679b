"""The asyncssh side of the SFTP endpoints: connect, run one piece of work, map its errors.

Imported by ``sftp.SftpClient`` on the first transfer only, so that the API, the CLI and the
daemon never load asyncssh (nor cryptography) unless an SFTP endpoint is used.
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

from atoz_watcher.config import SftpSettings
from atoz_watcher.sftp_address import (
    DEFAULT_PORT,
    Credentials,
    Failure,
    SftpAddress,
    SftpError,
    target,
)

T = TypeVar("T")
CHUNK: Final = 256 * 1024

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
    work: Callable[[Session], Awaitable[T]],
) -> T:
    """Connect, start an SFTP session, run ``work`` within ``transfer_timeout``, close."""
    conn = await _connect(settings, credentials)
    try:
        async with (
            asyncio.timeout(settings.transfer_timeout),
            conn.start_sftp_client() as sftp,
        ):
            return await work(sftp)
    except TimeoutError:
        raise SftpError(
            Failure.TIMEOUT,
            f"Timed out transferring with the SFTP site {credentials.where} "
            f"(after {settings.transfer_timeout:g} s)",
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
    settings: SftpSettings, credentials: Credentials
) -> asyncssh.SSHClientConnection:
    known_hosts = _known_hosts(settings)
    where = credentials.where
    try:
        async with asyncio.timeout(settings.connect_timeout):
            return await asyncssh.connect(
                credentials.address.host,
                credentials.port,
                username=credentials.username,
                password=credentials.password,
                known_hosts=known_hosts,
                client_factory=lambda: _Client(
                    known_hosts, trust_unknown=settings.trust_unknown_hosts
                ),
                # Only the password the client sent: never the service's own keys, agent
                # or ~/.ssh/config.
                client_keys=None,
                agent_path=None,
                config=[],
                x509_trusted_certs=None,
                preferred_auth=("password", "keyboard-interactive"),
                connect_timeout=settings.connect_timeout,
                login_timeout=settings.connect_timeout,
            )
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
