"""systemd's notify protocol (sd_notify): datagrams such as ``READY=1`` to $NOTIFY_SOCKET."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Self

import structlog

log = structlog.get_logger("atoz_watcher.sdnotify")


def socket_address(socket_path: str) -> str | None:
    """The address to send to: a filesystem path, or ``@name`` as ``\\0name`` (the abstract
    namespace). None for anything else (systemd's vsock addresses among them)."""
    if socket_path.startswith("@") and len(socket_path) > 1:
        return "\0" + socket_path[1:]
    if socket_path.startswith("/"):
        return socket_path
    return None


class Notifier:
    """Tells systemd how the service is doing; does nothing when not started by systemd.

    A notification that cannot be sent is logged at debug level and reported by returning
    False: the service must never stop over one.
    """

    def __init__(self, socket_path: str | None) -> None:
        self._address: str | None = None
        self._socket: socket.socket | None = None
        if not socket_path:
            return
        address = socket_address(socket_path)
        if address is None:
            log.warning("sdnotify.unsupported_socket", socket=socket_path)
            return
        try:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except OSError as exc:
            log.debug("sdnotify.socket_failed", error=str(exc))
            return
        self._address = address

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, message: str) -> bool:
        """Send one datagram of ``KEY=value`` lines; True when it was sent."""
        if self._socket is None or self._address is None:
            return False
        try:
            self._socket.sendto(message.encode("utf-8"), self._address)
        except OSError as exc:
            log.debug("sdnotify.send_failed", message=message, error=str(exc))
            return False
        return True

    def ready(self) -> bool:
        return self.notify("READY=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        # One line: a newline would start another KEY=value assignment.
        return self.notify("STATUS=" + " ".join(text.splitlines()))

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of $WATCHDOG_USEC, as sd_watchdog_enabled(3)
    advises. None when systemd expects no pings from process ``pid``."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    if "WATCHDOG_PID" in environ:
        try:
            watched = int(environ["WATCHDOG_PID"])
        except ValueError:
            return None
        if watched != pid:
            return None
    return usec / 2 / 1_000_000
