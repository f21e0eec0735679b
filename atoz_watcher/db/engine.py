"""Engines for SQLite and MariaDB/MySQL, and schema creation that never alters a table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from atoz_watcher.db.models import IMAGE_CATEGORY, TABLES, Definition
from atoz_watcher.errors import ConfigError

# A few image categories for a database that has none (a new embedded database). Open Dental's
# own new databases start with similar ones; ItemValue letters are its display flags.
DEFAULT_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("Miscellaneous", ""),
    ("X-Rays", "X"),
    ("Photos", "MP"),
    ("Forms", ""),
    ("Letters", ""),
)


SQLITE_CACHE_KIB = 512
# The API's reads run on FastAPI's threadpool (anyio's 40 threads). SQLAlchemy's default pool
# (5 connections kept, 10 more at most) made every request past the 15th wait for a connection,
# and closed the extra ones on their return, to open them anew (on MariaDB a login and its
# settings) a moment later. A pool keeps POOL_SIZE and opens up to POOL_MAX in all, so no
# thread of the API waits for a connection; idle ones past POOL_SIZE are closed.
POOL_SIZE = 20
POOL_MAX = 40
_POOL: dict[str, Any] = {"pool_size": POOL_SIZE, "max_overflow": POOL_MAX - POOL_SIZE}


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, busy_timeout_s: int = 60) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and write-locking transactions."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database_url: not a database URL: {url!r}") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(url, parsed.database, busy_timeout_s)
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_recycle=3600,
            # Each registration re-reads the rows it depends on after taking the lock, so it
            # must see what others committed meanwhile.
            isolation_level="READ COMMITTED",
            **_POOL,
        )
    except NoSuchModuleError:
        raise ConfigError(
            f"database_url: unsupported database {parsed.drivername!r} "
            "(use sqlite:///FILE or mysql+pymysql://USER:PASSWORD@HOST/DB)"
        ) from None


def read_engine(engine: Engine, *, busy_timeout_s: int = 60) -> Engine:
    """An engine for reads only that never waits for the registration lock.

    On SQLite, ``engine`` begins every transaction with BEGIN IMMEDIATE, the write lock: a read
    through it would queue behind every registration. The reader has connections of its own
    that begin with a plain (deferred) BEGIN and are ``query_only``: under WAL a read sees the
    last committed state and neither waits for a writer nor holds one up. On MariaDB/MySQL reads
    take no lock already (the registration lock is a named lock the writers take), so the
    engine itself is returned (its pool is sized for the API's threads: POOL_MAX).
    """
    if not is_sqlite(engine) or engine.url.database in {None, "", ":memory:"}:
        return engine
    reader = create_engine(engine.url, **_POOL)
    _set_up_sqlite(
        reader,
        pragmas=(
            f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}",
            # A reader waits only while SQLite recovers or resets the WAL, never for a writer.
            f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}",
            "PRAGMA query_only=1",
        ),
        # One snapshot for the statements of a request (patient, categories, page).
        begin="BEGIN DEFERRED",
    )
    return reader


def _sqlite_engine(url: str, database: str | None, busy_timeout_s: int) -> Engine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    _set_up_sqlite(
        engine,
        pragmas=(
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            # 512 KiB of pages a connection, not SQLite's 2 MiB: a whole-tree rescan reads every
            # row once (the OS caches the file anyway), and each pooled connection would keep
            # its 2 MiB for good: on 40,000 folders ~3.5 MB of the daemon's memory
            # (bench/large_tree.py).
            f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}",
            f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}",
        ),
        # BEGIN IMMEDIATE takes the write lock up front: a registrar that read "this file is
        # unknown" still holds the lock when it inserts, so two registrars cannot both insert.
        begin="BEGIN IMMEDIATE",
    )
    return engine


def _set_up_sqlite(engine: Engine, *, pragmas: Sequence[str], begin: str) -> None:
    """Run ``pragmas`` on each new connection of ``engine`` and start each transaction with
    ``begin``: we issue BEGIN ourselves instead of pysqlite's deferred one."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:  # noqa: ANN401
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin)


def create_missing_tables(engine: Engine) -> list[str]:
    """Create each of our tables the database lacks; never alter or drop one. Returns the
    names of the tables created."""
    existing = set(inspect(engine).get_table_names())
    missing = [table for table in TABLES if table.name not in existing]
    if missing:
        TABLES[0].metadata.create_all(engine, tables=missing, checkfirst=True)
    return [table.name for table in missing]


def add_default_categories(conn: Connection) -> list[str]:
    """Add DEFAULT_CATEGORIES when there is no image category at all; returns the names added."""
    table = Definition.__table__  # type: ignore[attr-defined]
    any_category = conn.execute(
        select(table.c.DefNum).where(table.c.Category == IMAGE_CATEGORY).limit(1)
    ).first()
    if any_category is not None:
        return []
    conn.execute(
        table.insert(),
        [
            {
                "Category": IMAGE_CATEGORY,
                "ItemOrder": order,
                "ItemName": name,
                "ItemValue": flags,
                "ItemColor": 0,
                "IsHidden": 0,
            }
            for order, (name, flags) in enumerate(DEFAULT_CATEGORIES)
        ],
    )
    return [name for name, _ in DEFAULT_CATEGORIES]
