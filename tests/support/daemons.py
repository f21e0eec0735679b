"""The daemon in the test's own process, on a thread of its own, against a test world."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from atoz_watcher.app.daemon import Daemon
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.sections import WatcherSettings
from atoz_watcher.config.settings import Settings
from atoz_watcher.system.sdnotify import Notifier
from tests.support.waiting import wait_for
from tests.support.worlds import World


def settings_for(world: World, **watcher: Any) -> Settings:
    options: dict[str, Any] = {"settle_seconds": 0.3, "rescan_interval": 3600.0}
    options.update(watcher)
    return Settings(
        atoz_path=world.root,
        database_url=world.url,
        state_dir=world.state,
        watcher=WatcherSettings(**options),
    )


@contextmanager
def running(world: World, **watcher: Any) -> Iterator[Daemon]:
    """A daemon on its own thread; stopped (and joined) when the block ends."""
    daemon = Daemon(
        Components.from_settings(settings_for(world, **watcher), world.engine),
        notifier=Notifier(None),
    )
    thread = threading.Thread(target=daemon.run, name="test-daemon")
    thread.start()
    try:
        wait_for(lambda: daemon.mode != "")
        yield daemon
    finally:
        daemon.handle_exit()
        thread.join(15)
        assert not thread.is_alive(), "the daemon did not stop within 15 s"


def by_name(world: World) -> Counter[tuple[int, str]]:
    """How many rows each (PatNum, FileName) has: a file registered twice shows as 2."""
    return Counter((d["PatNum"], d["FileName"]) for d in world.documents())
