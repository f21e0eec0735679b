"""The API's reads never wait for a pooled connection at the concurrency FastAPI runs them at."""

from __future__ import annotations

from contextlib import ExitStack

from sqlalchemy import event, text

from atoz_watcher.db.engine import POOL_SIZE, read_engine
from tests.support.worlds import World

# More at once than SQLAlchemy's default pool gives (5 + 10): the request past the 15th used
# to wait pool_timeout (30 s) for a connection, then fail.
CONCURRENT = 30


def test_reads_hold_more_connections_at_once_than_the_default_pool(bare_world: World) -> None:
    reader = read_engine(bare_world.engine)
    try:
        with ExitStack() as held:
            conns = [held.enter_context(reader.connect()) for _ in range(CONCURRENT)]
            counts = [
                conn.execute(text("SELECT COUNT(*) FROM patient")).scalar_one() for conn in conns
            ]
        assert counts == [0] * CONCURRENT
    finally:
        if reader is not bare_world.engine:
            reader.dispose()


def test_connections_returned_are_reused_not_opened_again(bare_world: World) -> None:
    """Up to POOL_SIZE connections stay open between requests: a burst of that many reads
    after another opens none (the default pool closed all but 5 and logged in again)."""
    reader = read_engine(bare_world.engine)
    opened: list[object] = []
    event.listen(reader, "connect", lambda conn, _record: opened.append(conn))
    try:
        for _ in range(2):
            with ExitStack() as held:
                for _ in range(POOL_SIZE):
                    held.enter_context(reader.connect()).execute(text("SELECT 1"))
        assert len(opened) <= POOL_SIZE  # the second burst reused the first's
    finally:
        if reader is not bare_world.engine:
            reader.dispose()
