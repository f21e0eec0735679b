"""Serving the API with uvicorn in a thread of its own, with a clean start and stop."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Self

import structlog
import uvicorn
from starlette.types import ASGIApp

from atoz_watcher.errors import AtozError, ConfigError

log = structlog.get_logger("atoz_watcher.api")

START_TIMEOUT_S = 10.0
# Requests still running when stop() is called get this long to finish.
GRACEFUL_S = 5.0
# The longest stop() waits for the serving thread: the grace period plus uvicorn's ticks.
JOIN_S = GRACEFUL_S + 5.0


class ApiServerError(AtozError):
    """The server did not start, or did not stop in time."""


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port); bind errors name the keys."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"api.host: cannot listen on {host!r}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"api.host/api.port: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    sock.set_inheritable(False)
    return sock


class ApiServer:
    """uvicorn serving ``app`` on ``host:port`` in a thread: ``start()``, ``stop()``.

    Logging stays ours: uvicorn's own config is off, and so is its access log (a line per
    request, which is where an Authorization header could end up).
    """

    def __init__(self, app: ASGIApp, *, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one picked, when configured as 0)."""
        if self._sock is None:
            raise ApiServerError("the API server is not started")
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = self._host if ":" not in self._host else f"[{self._host}]"
        return f"http://{host}:{self.port}"

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, timeout_s: float = START_TIMEOUT_S) -> None:
        self._sock = listen(self._host, self._port)
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            # The app's lifespan runs its own thumbnail queue and closes its read engine.
            lifespan="on",
            server_header=False,
            timeout_graceful_shutdown=int(GRACEFUL_S),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="atoz-api",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ApiServerError(f"the API server did not start on {self._host}:{self._port}")
            self._thread.join(0.01)
        log.info("api.listening", host=self._host, port=self.port)

    def handle_exit(self) -> None:
        """Ask the server to stop (from any thread); ``stop()`` waits for it."""
        if self._server is not None:
            self._server.should_exit = True

    def stop(self) -> None:
        """Stop accepting, let running requests finish (up to GRACEFUL_S), join the thread."""
        self.handle_exit()
        if self._thread is not None:
            self._thread.join(JOIN_S)
            if self._thread.is_alive():
                if self._server is not None:
                    self._server.force_exit = True
                self._thread.join(JOIN_S)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
        log.info("api.stopped")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
