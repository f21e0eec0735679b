"""httpx under netguard, with a total deadline: the transport ``download`` fetches through.

``GuardedBackend`` resolves a host once, judges every address (``NetGuard.addresses``) and
connects to those very addresses, so a name cannot change its answer between the check and the
connection (DNS rebinding).

``Cutoff`` is the download's total deadline, enforced from outside the transfer: httpx's
timeouts are per operation (a read timeout restarts with every byte, so a server that sends a
byte a second is never timed out), so a timer thread shuts down every socket of the download
when the deadline passes. A read blocked on one then returns at once, and so does every later
one; the connection is dropped, not closed politely.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import httpcore
import httpx

from atoz_watcher.net.guard import NetGuard, RefusedError


class Cutoff:
    """Drops every connection registered with it ``seconds`` after ``start()``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._fired = False
        self._deadline = 0.0
        self._timer: threading.Timer | None = None

    @property
    def fired(self) -> bool:
        return self._fired

    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def __enter__(self) -> Self:
        self._deadline = time.monotonic() + self.seconds
        self._timer = threading.Timer(self.seconds, self.fire)
        self._timer.name = "atoz-download-cutoff"
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join()

    def fire(self) -> None:
        """Shut down every registered socket (from the timer thread, or a test)."""
        with self._lock:
            self._fired = True
            for sock in self._sockets:
                _shut_down(sock)

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            if self._fired:  # connected after the deadline: dropped at once
                _shut_down(sock)

    def forget(self, sock: socket.socket) -> None:
        """Called before the socket is closed: its descriptor may be reused after."""
        with self._lock:
            self._sockets.discard(sock)


def _shut_down(sock: socket.socket) -> None:
    """``shutdown(SHUT_RDWR)`` on the descriptor: wakes a thread blocked reading it. Through a
    plain socket object on the same descriptor, so a TLS socket's state is left alone."""
    try:
        plain = socket.socket(fileno=sock.fileno())
    except OSError:  # already closed
        return
    try:
        plain.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        plain.detach()  # the descriptor stays the stream's own


class _CutStream(httpcore.NetworkStream):
    """A stream whose socket the cutoff can shut down; its TLS upgrade is tracked too."""

    def __init__(self, stream: httpcore.NetworkStream, cutoff: Cutoff) -> None:
        self._stream = stream
        self._cutoff = cutoff
        self._sock: socket.socket | None = stream.get_extra_info("socket")
        if self._sock is not None:
            cutoff.track(self._sock)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        if self._sock is not None:
            self._cutoff.forget(self._sock)
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,  # noqa: ANN401 - httpcore's own signature
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        upgraded = self._stream.start_tls(ssl_context, server_hostname, timeout)
        if self._sock is not None:  # the TLS socket now owns the descriptor
            self._cutoff.forget(self._sock)
            self._sock = None
        return _CutStream(upgraded, self._cutoff)

    def get_extra_info(self, info: str) -> Any:  # noqa: ANN401 - httpcore's own signature
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to addresses the guard accepted.

    The address judged is the address connected to: the resolution happens once, here, at
    connect time, so a name cannot change its answer between the check and the connection.
    """

    def __init__(self, guard: NetGuard, cutoff: Cutoff | None = None) -> None:
        self._guard = guard
        self._cutoff = cutoff

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._guard.addresses(host, port)
        except RefusedError:
            raise
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        last: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        # Each address in the resolver's order, as socket.create_connection tries them.
        for address in addresses:
            if self._cutoff is not None:
                if self._cutoff.fired:
                    raise httpcore.ConnectTimeout("the download's deadline has passed")
                remaining = self._cutoff.remaining()
                timeout = remaining if timeout is None else min(timeout, remaining)
            try:
                stream = super().connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
            else:
                return stream if self._cutoff is None else _CutStream(stream, self._cutoff)
        assert last is not None  # noqa: S101 - addresses() never returns an empty list
        raise last


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport (request mapping, exception mapping, TLS), over GuardedBackend.

    ``HTTPTransport`` takes no network backend, so its connection pool is replaced by one that
    uses ours; everything else is httpx's code. No proxy: one would resolve names itself.
    """

    def __init__(self, guard: NetGuard, cutoff: Cutoff | None = None) -> None:
        ssl_context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=1,
            network_backend=GuardedBackend(guard, cutoff),
        )
