"""``atoz-watcher api``: the Documents API (and the front-desk page with [ui] enabled), until
SIGTERM or SIGINT."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from atoz_watcher.app.commands.common import EXIT_OK, exit_on_signals, require_tables
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.settings import Settings
from atoz_watcher.errors import AtozError, ConfigError, RootUnusableError
from atoz_watcher.system.memory import freeze_startup_objects

# The heavy parts are imported in the command that runs them (see the note in app.cli).
if TYPE_CHECKING:
    from atoz_watcher.api import ApiServer
    from atoz_watcher.imaging.jobs import OnStored
    from atoz_watcher.system.status import StatusBoard

# How often `atoz-watcher api` checks that its server thread is still serving.
API_CHECK_S = 1.0


def run_api(settings: Settings, engine: Engine) -> int:
    """``atoz-watcher api``: the Documents API alone, until SIGTERM or SIGINT."""
    require_api_keys(settings)
    require_tables(engine)
    if settings.storage == "LocalAtoZ" and not settings.atoz_path.is_dir():
        raise RootUnusableError(settings.atoz_path, "it does not exist or is not a folder")
    stop = threading.Event()
    with exit_on_signals(stop.set):
        # No daemon's thumbnail queue runs here: what the page files gets its thumbnail at
        # once (the API runs a queue of its own).
        components = Components.from_settings(settings, engine, inline_thumbnails=True)
        server = api_server(components, api=True)
        server.start()
        freeze_startup_objects()  # what serves from now on: see system.memory
        try:
            while not stop.wait(API_CHECK_S):
                if not server.is_alive():
                    raise AtozError("the API server stopped unexpectedly")
        finally:
            server.stop()
    return EXIT_OK


def api_server(
    components: Components,
    *,
    api: bool,
    status: StatusBoard | None = None,
    on_placeholder: Callable[[], None] | None = None,
    on_stored: OnStored | None = None,
) -> ApiServer:
    """The server on [api] host/port: the Documents API (when ``api``) and, with [ui] enabled,
    the front-desk page at /ui (see ``Components.server_app``)."""
    # FastAPI and uvicorn are imported only where the API runs: they cost every other command
    # (and a daemon without the API) about 15 MB and a third of a second.
    from atoz_watcher.api import ApiServer  # noqa: PLC0415

    app = components.server_app(
        api=api, status=status, on_placeholder=on_placeholder, on_stored=on_stored
    )
    settings = components.settings.api
    return ApiServer(app, host=settings.host, port=settings.port)


def require_api_keys(settings: Settings) -> None:
    if not settings.api.keys:
        raise ConfigError(
            "api.keys: no [[api.keys]] pair is configured, so the API would refuse every "
            "request; add one with developer_key and customer_key"
        )
