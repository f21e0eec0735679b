"""Prometheus metrics: one registry per Metrics object, and its /metrics endpoint."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import Any, Self
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

METRICS_PATH = "/metrics"
# From a small file on a local disk (tens of milliseconds) to a large scan copied over a slow
# share, which waits for the file to settle first.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# A scrape that stalls cannot hold close() for longer than this.
REQUEST_TIMEOUT_S = 10.0
# How often the serving thread looks for close(): the longest close() waits for it.
SHUTDOWN_POLL_S = 0.1


class Metrics:
    """The daemon's counters, gauges and histogram, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._registered = Counter(
            "atoz_files_registered",
            "Files registered as document rows.",
            registry=self.registry,
        )
        self._skipped = Counter(
            "atoz_files_skipped",
            "Files seen and not registered, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self._errors = Counter(
            "atoz_errors",
            "Errors by kind (database, permission, ...).",
            ["kind"],
            registry=self.registry,
        )
        self._queue_depth = Gauge(
            "atoz_queue_depth",
            "Files waiting to be registered.",
            registry=self.registry,
        )
        self._last_scan = Gauge(
            "atoz_last_successful_scan_timestamp_seconds",
            "Unix time the last complete scan of the tree finished.",
            registry=self.registry,
        )
        self._latency = Histogram(
            "atoz_registration_latency_seconds",
            "Seconds from a file's arrival to its document row.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self._thumbnails = Counter(
            "atoz_thumbnails",
            "Thumbnail jobs by outcome (made, fresh, failed, missing).",
            ["outcome"],
            registry=self.registry,
        )
        self._thumbnail_queue = Gauge(
            "atoz_thumbnail_queue_depth",
            "Thumbnails waiting to be rendered.",
            registry=self.registry,
        )

        self._materialized = Counter(
            "atoz_materialized",
            "Placeholder documents (Note _download_: or _rawBase64_:) by outcome: materialised, "
            "refused, http_error, timeout, too_large, network, bad_note, patient_missing, "
            "storage, error, database, raced, gave_up.",
            ["outcome"],
            registry=self.registry,
        )
        self._inbox = Counter(
            "atoz_inbox",
            "Files dropped in a scanner inbox by outcome (routed, split, unmatched, duplicate) "
            "and detail (the rule that routed it: cover-sheet, token, dicom, assigned; or why it "
            "was not: no-route, unknown-patient, ...).",
            ["outcome", "detail"],
            registry=self.registry,
        )

    def registered(self, count: int = 1) -> None:
        self._registered.inc(count)

    def skipped(self, reason: str) -> None:
        self._skipped.labels(reason=reason).inc()

    def error(self, kind: str) -> None:
        self._errors.labels(kind=kind).inc()

    def set_queue_depth(self, depth: int) -> None:
        self._queue_depth.set(depth)

    def scan_completed(self, when: float) -> None:
        self._last_scan.set(when)

    def observe_latency(self, seconds: float) -> None:
        self._latency.observe(seconds)

    def thumbnail(self, outcome: str) -> None:
        self._thumbnails.labels(outcome=outcome).inc()

    def set_thumbnail_queue(self, depth: int) -> None:
        self._thumbnail_queue.set(depth)

    def materialized(self, outcome: str) -> None:
        self._materialized.labels(outcome=outcome).inc()

    def inbox(self, outcome: str, detail: str) -> None:
        """One inbox file's outcome (``Inbox``'s ``on_outcome`` hook)."""
        self._inbox.labels(outcome=outcome, detail=detail).inc()

    def serve(self, host: str, port: int) -> MetricsServer:
        """Serve ``/metrics`` on ``host:port`` (0: any free port) from a thread of its own."""
        return MetricsServer(host, port, only_metrics_path(make_wsgi_app(self.registry)))


def only_metrics_path(app: WSGIApplication) -> WSGIApplication:
    """``app`` at ``/metrics``; 404 everywhere else."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == METRICS_PATH:
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: the metrics are at /metrics\n"]

    return wrapped


class _QuietHandler(WSGIRequestHandler):
    # Socket timeout per connection (socketserver.StreamRequestHandler applies it).
    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401
        # One line per scrape on stderr would bury the daemon's JSON log.
        del format, args


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # Request threads are joined by server_close(), so close() leaves no thread behind.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


def _server_class(host: str, port: int) -> type[_ThreadingServer]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    if infos and infos[0][0] == socket.AF_INET6:
        return _ThreadingServer6
    return _ThreadingServer


class MetricsServer:
    """An HTTP server on a daemon thread; ``close()`` stops it and joins every thread."""

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApplication,
    ) -> None:
        self._httpd = make_server(
            host, port, app, server_class=_server_class(host, port), handler_class=_QuietHandler
        )
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._closed = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name=f"metrics-http-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving, wait for the thread and any request in flight. Safe to repeat."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
