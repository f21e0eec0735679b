"""An SFTP client for the API's SFTP endpoints, on asyncssh, behind a synchronous facade.

asyncssh, not paramiko: one maintained, typed SSH stack serves both this client and the tests'
real in-process SFTP server. Each call runs its own short-lived event loop (``asyncio.run``) on
a thread of its own, so there is no global loop and nothing outlives the call.

asyncssh is imported by ``sftp_session``, and that only on the first transfer: checking an
address or building the API loads neither it nor cryptography.

Three limits hold whatever the SFTP site does:

- Where: the same network guard as the materialiser's downloads (``netguard``). The host is
  resolved once, every address judged (loopback, private, link-local, cloud metadata and other
  internal addresses refused unless ``allow_hosts`` lists the host or the address), and the
  connection made to those very addresses, so a name cannot answer differently in between.
  SftpPort must be in ``allow_ports``. An IP address is judged with the request's other
  checks, before any work; a name when its transfer starts; either way before any connection.
- How long: ``sftp_session`` drops the connection (abort, not a polite close) when
  ``transfer_timeout`` passes after the login, close included; and this facade waits for the
  whole call at most ``connect_timeout + transfer_timeout + ABANDON_S`` (``deadline``), so a
  worker thread is never held longer, whatever happens inside.
- How many: at most ``max_in_flight`` transfers at once; one more is refused at once (a 503
  with Retry-After), so slow sites cannot take every worker thread of the API. A transfer that
  had to be abandoned keeps its place until its thread really ends.

Passwords are never logged, and never part of an error's message.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

import structlog

from atoz_watcher.config.sections import SftpSettings
from atoz_watcher.net.guard import IPAddress, NetGuard, RefusedError, Resolver, system_resolver
from atoz_watcher.net.sftp_address import (
    DEFAULT_PORT,
    Credentials,
    Failure,
    SftpError,
    host_allowed,
    is_ip_literal,
    parse_address,
    require_plain,
)
from atoz_watcher.system.deadline import DeadlineExceededError, call_within

if TYPE_CHECKING:
    from atoz_watcher.net.sftp_session import Session

log = structlog.get_logger("atoz_watcher.sftp")

T = TypeVar("T")
# How much longer than its own limits a call may take before the facade gives up on it.
ABANDON_S: Final = 2.0


class InFlight:
    """A count of transfers running, refusing one over ``limit`` instead of waiting."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._count = 0

    @property
    def full(self) -> bool:
        return self._count >= self.limit

    def enter(self) -> bool:
        with self._lock:
            if self._count >= self.limit:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._count -= 1


def busy_error(limit: int) -> SftpError:
    return SftpError(
        Failure.BUSY,
        f"{limit} SFTP transfers are already in progress (the most allowed at once); "
        "try again later",
    )


class SftpClient:
    """Fetches and puts files on a client's SFTP site; one connection per call."""

    def __init__(self, settings: SftpSettings, *, resolver: Resolver = system_resolver) -> None:
        self._settings = settings
        self._guard = NetGuard(settings.allow_hosts, resolver=resolver)
        self._in_flight = InFlight(settings.max_in_flight)

    def require_room(self) -> None:
        """Raise the BUSY SftpError when a transfer started now would be refused
        (``max_in_flight`` running): the caller need not do its work first."""
        if self._in_flight.full:
            raise busy_error(self._in_flight.limit)

    def credentials(
        self, address: str, port: int | None, username: str, password: str
    ) -> Credentials:
        """Parse and check the address and port. A host outside a set ``allow_hosts``, a port
        outside ``allow_ports``, an internal IP address: refused here, before any connection or
        DNS lookup. (A name is judged when its transfer starts: that needs a lookup.)"""
        parsed = parse_address(address)
        port = port or DEFAULT_PORT
        if not host_allowed(parsed.host, self._settings.allow_hosts):
            raise SftpError(
                Failure.REFUSED_HOST,
                f"The SFTP host {parsed.host} is not allowed here ([sftp] allow_hosts)",
            )
        if port not in self._settings.allow_ports:
            raise SftpError(
                Failure.REFUSED_PORT,
                f"The SFTP port {port} is not allowed here ([sftp] allow_ports)",
            )
        credentials = Credentials(address=parsed, port=port, username=username, password=password)
        if is_ip_literal(parsed.host):
            self._addresses(credentials)  # no lookup: judged now
        return credentials

    def fetch(self, credentials: Credentials) -> bytes:
        """The file at the address, at most ``max_bytes``."""
        from atoz_watcher.net import sftp_session  # noqa: PLC0415 - asyncssh on first use only

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
        from atoz_watcher.net import sftp_session  # noqa: PLC0415 - asyncssh on first use only

        require_plain(default_name)
        return self._run(
            credentials,
            lambda sftp: sftp_session.write_at(sftp, credentials.address, default_name, data),
            action="upload",
        )

    def put_many(self, credentials: Credentials, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """Write each (name, data) into the folder the address names, over one connection."""
        from atoz_watcher.net import sftp_session  # noqa: PLC0415 - asyncssh on first use only

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
        from atoz_watcher.net import sftp_session  # noqa: PLC0415 - asyncssh on first use only

        fields = {"host": credentials.address.host, "port": credentials.port, "action": action}
        if not self._in_flight.enter():
            log.info("sftp.busy", limit=self._in_flight.limit, **fields)
            raise busy_error(self._in_flight.limit)

        def transfer() -> T:
            try:
                addresses = self._addresses(credentials)  # resolved once, judged, connected to
                # A private event loop for this call, on this call's own thread.
                return asyncio.run(sftp_session.run(self._settings, credentials, addresses, work))
            finally:
                self._in_flight.leave()  # by the transfer's thread, even when abandoned

        limit = self._settings.connect_timeout + self._settings.transfer_timeout + ABANDON_S
        try:
            result = call_within(transfer, limit, name="atoz-sftp")
        except DeadlineExceededError:
            log.warning("sftp.abandoned", after_s=limit, **fields)
            raise SftpError(
                Failure.TIMEOUT,
                f"Timed out with the SFTP site {credentials.where} (after {limit:g} s)",
            ) from None
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

    def _addresses(self, credentials: Credentials) -> list[IPAddress]:
        """The host resolved once and judged by the network guard."""
        host = credentials.address.host
        try:
            return self._guard.addresses(host, credentials.port)
        except RefusedError as exc:
            raise SftpError(
                Failure.REFUSED_HOST,
                f"The SFTP host {host} is not allowed here: {exc.reason}",
            ) from None
        except OSError as exc:
            raise SftpError(
                Failure.CONNECT,
                f"Could not connect to the SFTP site {credentials.where}: the host name could "
                f"not be resolved ({exc.strerror or exc})",
            ) from None
