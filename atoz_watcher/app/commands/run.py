"""``atoz-watcher run``: the daemon, with the metrics endpoint and (when enabled) the API and
the front-desk page."""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from atoz_watcher.app.commands.api import api_server, require_api_keys
from atoz_watcher.app.commands.common import EXIT_OK, exit_on_signals, require_tables
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.sections import MetricsSettings
from atoz_watcher.config.settings import Settings
from atoz_watcher.errors import ConfigError, RootUnusableError
from atoz_watcher.system.memory import freeze_startup_objects

# The heavy parts are imported in the command that runs them (see the note in app.cli).
if TYPE_CHECKING:
    from atoz_watcher.system.metrics import Metrics, MetricsServer


def run_daemon(settings: Settings, engine: Engine) -> int:
    if settings.storage == "InDatabase":
        raise ConfigError("storage: InDatabase has no A-to-Z folder to watch")
    from atoz_watcher.app.daemon import Daemon  # noqa: PLC0415 - see the note at the top
    from atoz_watcher.app.kill_points import kill_at  # noqa: PLC0415
    from atoz_watcher.system.sdnotify import Notifier, watchdog_interval  # noqa: PLC0415

    require_tables(engine)
    if not settings.atoz_path.is_dir():
        raise RootUnusableError(settings.atoz_path, "it does not exist or is not a folder")
    components = Components.from_settings(settings, engine, inbox_on_step=kill_at(os.environ))
    notifier = Notifier(os.environ.get("NOTIFY_SOCKET"))
    daemon = Daemon(
        components,
        notifier=notifier,
        watchdog_interval_s=watchdog_interval(os.environ, os.getpid()),
    )
    if settings.api.enabled:
        require_api_keys(settings)
    with ExitStack() as stack:
        stack.callback(notifier.close)
        if settings.metrics.enabled:
            stack.callback(serve_metrics(components.metrics, settings.metrics).close)
        stack.enter_context(exit_on_signals(daemon.handle_exit))
        if settings.api.enabled or settings.ui.enabled:
            # The API (when enabled) and the front-desk page (when enabled, even without the
            # API), on [api] host/port; the page shows the daemon's status board.
            server = api_server(
                components,
                api=settings.api.enabled,
                status=components.status_board,
                on_placeholder=daemon.materializer.wake,
                on_stored=daemon.on_stored,
            )
            server.start()
            # Stopped after the daemon: requests in flight finish against a live database.
            stack.callback(server.stop)
            freeze_startup_objects()  # what serves from now on: see system.memory
        daemon.run()
    return EXIT_OK


def serve_metrics(metrics: Metrics, settings: MetricsSettings) -> MetricsServer:
    """The /metrics endpoint; a port in use is a configuration error naming the keys."""
    try:
        return metrics.serve(settings.host, settings.port)
    except OSError as exc:
        raise ConfigError(
            f"metrics.host/metrics.port: cannot listen on {settings.host}:{settings.port}: "
            f"{exc.strerror or exc}; stop what uses it, set another metrics.port, or set "
            "metrics.enabled = false"
        ) from None
