"""Real HTTP servers on loopback for the download tests, and a resolver from a table.

``serving`` runs an HTTP/1.0 server in a thread (stopped and joined after); ``Site`` is what it
serves and what it saw. ``table_resolver`` resolves names from a table, so that no DNS query
ever leaves the machine.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from atoz_watcher.net.guard import Resolver

Route = Callable[[BaseHTTPRequestHandler], None]


class _Server(ThreadingHTTPServer):
    # Request threads are joined by server_close(): a test never leaves one behind.
    daemon_threads = False
    block_on_close = True


class Site:
    """What a running test server serves (path -> route) and saw (path, Host header)."""

    def __init__(self, server: _Server, routes: dict[str, Route]) -> None:
        self.server = server
        self.routes = routes
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[str] = []
        self.host, self.port = str(server.server_address[0]), int(server.server_address[1])
        # Routes that hold a response back wait on this; set at teardown so none is left.
        self.release = threading.Event()

    def url(self, path: str, *, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"


@contextmanager
def serving(
    routes: Mapping[str, Route] | None = None, *, host: str = "127.0.0.1"
) -> Iterator[Site]:
    """An HTTP/1.0 server on ``host`` (a loopback address) in a thread; stopped and joined."""
    table: dict[str, Route] = dict(routes or {})
    site: Site | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert site is not None
            site.requests.append((self.path, self.headers.get("Host", "")))
            site.authorizations.append(self.headers.get("Authorization", ""))
            route = site.routes.get(self.path.split("?", 1)[0])
            if route is None:
                self.send_error(404)
                return
            route(self)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            del format, args

    server = _Server((host, 0), Handler)
    site = Site(server, table)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-http"
    )
    thread.start()
    try:
        yield site
    finally:
        site.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
        assert not thread.is_alive()


def body(data: bytes, content_type: str = "application/octet-stream", status: int = 200) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return route


def redirect(location: str, status: int = 302) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def table_resolver(table: Mapping[str, Sequence[str]]) -> Resolver:
    """Names from ``table``; IP literals as themselves; anything else does not resolve."""

    def resolve(host: str, port: int) -> list[str]:
        del port
        if host in table:
            return list(table[host])
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: unknown in this test") from None

    return resolve
