"""``atoz-watcher init-db``: the tables atoz-watcher needs, and default image categories."""

from __future__ import annotations

from typing import TextIO

from sqlalchemy import Engine

from atoz_watcher.app.commands.common import EXIT_OK
from atoz_watcher.db.engine import add_default_categories, create_missing_tables


def run_init_db(engine: Engine, out: TextIO) -> int:
    created = create_missing_tables(engine)
    with engine.begin() as conn:
        categories = add_default_categories(conn)
    print(f"tables created: {', '.join(created) or 'none (all present)'}", file=out)
    print(f"image categories added: {', '.join(categories) or 'none (some exist)'}", file=out)
    return EXIT_OK
