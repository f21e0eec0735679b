"""An SFTP client for the API's SFTP endpoints, on asyncssh, behind a synchronous facade.

asyncssh, not paramiko: one maintained, typed SSH stack serves both this client and the tests'
real in-process SFTP server. The API runs its endpoints in a thread pool; each call here runs
its own short-lived event loop (``asyncio.run``) in the calling thread, so there is no global
loop and nothing outlives the call.

asyncssh is imported by ``sftp_session``, and that only on the first transfer: checking an
address or building the API loads neither it nor cryptography.

Passwords are never logged, and never part of an error's message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from atoz_watcher.config import SftpSettings
from atoz_watcher.sftp_address import (
    DEFAULT_PORT,
    Credentials,
    Failure,
    SftpError,
    host_allowed,
    parse_address,
    require_plain,
)

if TYPE_CHECKING:
    from atoz_watcher.sftp_session import Session

log = structlog.get_logger("atoz_watcher.sftp")

T = TypeVar("T")


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
        from atoz_watcher import sftp_session  # noqa: PLC0415 - asyncssh on first use only

        limit = self._settings.max_bytes
        return self._run(
            credentials,
            lambda sftp: sftp_session.read_file(sftp, credentials.address, limit),
            action="download",
        )

    def put(self, credentials: Credentials, data: bytes, *, default_name: str) -> str:
        """Write ``data`` at the address, creating folders and replacing a file of that name.

        A folder address (ending in ``/``, a last part without an extension, or an existing
        folder) gets ``default_name``. Returns the path written.
        """
        from atoz_watcher import sftp_session  # noqa: PLC0415 - asyncssh on first use only

        require_plain(default_name)
        return self._run(
            credentials,
            lambda sftp: sftp_session.write_at(sftp, credentials.address, default_name, data),
            action="upload",
        )

    def put_many(self, credentials: Credentials, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """Write each (name, data) into the folder the address names, over one connection."""
        from atoz_watcher import sftp_session  # noqa: PLC0415 - asyncssh on first use only

        for name, _ in files:
            require_plain(name)
        folder = credentials.address.path.rstrip("/") or "/"
        return self._run(
            credentials,
            lambda sftp: sftp_session.write_many(sftp, folder, files),
            action="upload",
        )

    def _run(
        self,
        credentials: Credentials,
        work: Callable[[Session], Coroutine[Any, Any, T]],
        *,
        action: str,
    ) -> T:
        from atoz_watcher import sftp_session  # noqa: PLC0415 - asyncssh on first use only

        fields = {"host": credentials.address.host, "port": credentials.port, "action": action}
        try:
            # A private event loop for this call, in the calling (thread-pool) thread.
            result = asyncio.run(sftp_session.run(self._settings, credentials, work))
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
