"""``atoz-watcher check``: the checks of app.check, printed."""

from __future__ import annotations

from typing import TextIO

from sqlalchemy import Engine

from atoz_watcher.app.commands.common import EXIT_OK
from atoz_watcher.config.settings import Settings

# The heavy parts are imported in the command that runs them (see the note in app.cli).


def run_check(settings: Settings, engine: Engine, out: TextIO) -> int:
    from atoz_watcher.app.check import format_results, run_checks  # noqa: PLC0415 - see the note at the top

    results = run_checks(settings, engine)
    print(format_results(results), file=out)
    return EXIT_OK if all(r.ok for r in results) else 1
