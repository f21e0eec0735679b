"""The registration lock: one registrar at a time decides names and inserts rows.

Open Dental's tables are often MyISAM (no transactions, no row locks), so exactly-once cannot
rest on a transaction around the INSERT. On MariaDB/MySQL we take a named lock (``GET_LOCK``),
which works whatever the table engine and across machines sharing the database. On SQLite the
transaction itself is the lock: the engine begins every transaction with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from atoz_watcher.errors import DatabaseUnavailableError, LockTimeoutError

LOCK_NAME = "atoz_watcher.register"


@contextmanager
def registration_lock(conn: Connection, *, timeout_s: int) -> Iterator[None]:
    """Hold the registration lock for the body; the caller commits inside it."""
    if conn.dialect.name == "sqlite":
        yield
        return
    got = conn.execute(
        text("SELECT GET_LOCK(:name, :timeout)"), {"name": LOCK_NAME, "timeout": timeout_s}
    ).scalar()
    # End the transaction GET_LOCK opened, so what we read next is read after the lock.
    conn.commit()
    if got != 1:
        raise LockTimeoutError(
            f"another registrar held the lock {LOCK_NAME!r} for more than {timeout_s} s"
        )
    try:
        yield
    finally:
        _release(conn)


def _release(conn: Connection) -> None:
    # A broken connection has released the lock already: the server drops named locks with the
    # session that held them. Touching an invalidated connection would raise
    # PendingRollbackError (not a DBAPIError) and hide the error that broke it, which is the
    # one the caller must see: a database error, retried, not a crash of the batch.
    if conn.invalidated:
        return
    # No commit after it: a named lock is no part of the transaction, and the connection's
    # return to the pool ends the transaction this SELECT began (one round trip, not two).
    with suppress(DBAPIError):
        conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})


@contextmanager
def locked_connection(engine: Engine, *, timeout_s: int) -> Iterator[Connection]:
    """A connection holding the registration lock; database errors become
    DatabaseUnavailableError (the callers retry those)."""
    try:
        with engine.connect() as conn, registration_lock(conn, timeout_s=timeout_s):
            yield conn
    except DBAPIError as exc:
        raise DatabaseUnavailableError(f"database error: {exc.orig}") from exc
