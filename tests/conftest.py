"""Fixtures: a test world (A-to-Z root, state folder, database) on SQLite and on MariaDB.

MariaDB is the real server on 127.0.0.1:3306 (root, no password); each test gets its own
database, created and dropped here. Where the server is absent the MariaDB cases are skipped,
except under CI (CI=true), where that is a failure: CI must test both databases.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import Engine, MetaData, Table, select, text

from atoz_watcher.db.engine import create_missing_tables, make_engine
from atoz_watcher.db.shape import TableShape
from atoz_watcher.journal import Journal
from atoz_watcher.layout import patient_dir
from atoz_watcher.registrar import Registrar
from atoz_watcher.rescan import Rescanner, Summary

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
IMAGE_CATEGORY = 18

# Open Dental 25.4's document table as its own schema dump declares it (MyISAM, no defaults on
# most columns, three columns atoz-watcher does not know), and a patient table with NOT NULL
# columns we never write. Inserts must still succeed in MariaDB's strict mode.
OPEN_DENTAL_DDL = (
    """CREATE TABLE patient (
        PatNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        LName varchar(100) NOT NULL, FName varchar(100) NOT NULL,
        MiddleI varchar(100) NOT NULL, Preferred varchar(100) NOT NULL,
        PatStatus tinyint unsigned NOT NULL, Gender tinyint unsigned NOT NULL,
        Birthdate date NOT NULL, SSN varchar(100) NOT NULL, Address varchar(100) NOT NULL,
        ImageFolder varchar(100) NOT NULL, EstBalance double NOT NULL,
        DateTStamp timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
        SecDateEntry date NOT NULL
    ) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE definition (
        DefNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        Category tinyint unsigned NOT NULL, ItemOrder smallint unsigned NOT NULL,
        ItemName varchar(255) NOT NULL, ItemValue varchar(255) NOT NULL,
        ItemColor int NOT NULL, IsHidden tinyint NOT NULL
    ) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE document (
        DocNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        Description varchar(255) NOT NULL, DateCreated datetime NOT NULL,
        DocCategory bigint NOT NULL, PatNum bigint NOT NULL, FileName varchar(255) NOT NULL,
        ImgType tinyint unsigned NOT NULL, IsFlipped tinyint NOT NULL,
        DegreesRotated float NOT NULL, ToothNumbers varchar(255) NOT NULL, Note mediumtext,
        SigIsTopaz tinyint NOT NULL, Signature text, CropX int NOT NULL, CropY int NOT NULL,
        CropW int NOT NULL, CropH int NOT NULL, WindowingMin int NOT NULL,
        WindowingMax int NOT NULL, MountItemNum bigint NOT NULL,
        DateTStamp timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
        RawBase64 mediumtext NOT NULL, Thumbnail text NOT NULL,
        ExternalGUID varchar(255) NOT NULL, ExternalSource varchar(255) NOT NULL,
        ProvNum bigint NOT NULL, IsCropOld tinyint unsigned NOT NULL,
        OcrResponseData text NOT NULL, ImageCaptureType tinyint NOT NULL,
        PrintHeading tinyint NOT NULL, ChartLetterHash varchar(255) NOT NULL,
        ChartLetterStatus tinyint NOT NULL, UserNum bigint NOT NULL,
        KEY PatNum (PatNum), KEY PNDC (PatNum, DocCategory), KEY MountItemNum (MountItemNum)
    ) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4""",
)

DB_KINDS = ("sqlite", "mariadb", "mariadb-opendental")

_OWN_BASETEMP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Give each run a fresh temporary root of its own (unless --basetemp is given).

    pytest's default numbered folders are pruned at exit by a helper that can leave an
    os.scandir iterator open; with warnings as errors that fails a run whose tests all passed.
    A root of our own is never pruned that way, and concurrent runs cannot touch each other's.
    """
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="atoz-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        # rm, not shutil.rmtree: some tests build folders deeper than Python's recursion limit.
        subprocess.run(["/bin/rm", "-rf", "--", own], check=False)


def mariadb_available() -> bool:
    try:
        pymysql.connect(**MARIADB, connect_timeout=3).close()
    except pymysql.Error:
        return False
    return True


def _require_mariadb() -> None:
    if mariadb_available():
        return
    message = "MariaDB is not reachable on 127.0.0.1:3306"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must run the MariaDB tests (.ci/run starts the server)")
    pytest.skip(message)


@contextmanager
def mariadb_database(*, opendental_schema: bool) -> Iterator[str]:
    """A fresh, empty database on the MariaDB server; dropped afterwards. Yields its URL."""
    _require_mariadb()
    name = f"atoz_test_{uuid.uuid4().hex[:12]}"
    admin = pymysql.connect(**MARIADB, autocommit=True)
    with admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        if opendental_schema:
            conn = pymysql.connect(**MARIADB, database=name, autocommit=True)
            with conn, conn.cursor() as cursor:
                for ddl in OPEN_DENTAL_DDL:
                    cursor.execute(ddl)
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        # A new connection: a test may have restarted the server (an outage test).
        admin = pymysql.connect(**MARIADB, autocommit=True)
        with admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'atoz-watcher.sqlite3'}"
        return
    with mariadb_database(opendental_schema=kind == "mariadb-opendental") as url:
        yield url


@dataclass
class World:
    """One A-to-Z root, one state folder and one database, with helpers to fill them."""

    kind: str
    url: str
    engine: Engine
    root: Path
    state: Path

    def _insert(self, table: str, values: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            shape = TableShape.reflect(conn, table)
            result = conn.execute(shape.table.insert(), [shape.complete(values)])
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def add_patient(self, lname: str, fname: str, image_folder: str = "") -> int:
        return self._insert(
            "patient",
            {"LName": lname, "FName": fname, "PatStatus": 0, "ImageFolder": image_folder},
        )

    def add_category(
        self, name: str, *, order: int, hidden: bool = False, category: int = IMAGE_CATEGORY
    ) -> int:
        return self._insert(
            "definition",
            {
                "Category": category,
                "ItemOrder": order,
                "ItemName": name,
                "ItemValue": "",
                "ItemColor": 0,
                "IsHidden": int(hidden),
            },
        )

    def add_document(self, pat_num: int, file_name: str, category: int, **columns: Any) -> int:
        return self._insert(
            "document",
            {
                "PatNum": pat_num,
                "FileName": file_name,
                "Description": file_name,
                "DocCategory": category,
                "Note": "",
                "Signature": "",
                **columns,
            },
        )

    def patients_with_folders(self, lname: str, count: int) -> list[Path]:
        """``count`` patients named ``lname`` (first names P0, P1, ...), each with its folder."""
        folders = []
        for i in range(count):
            name = f"{lname}P{i}x"
            self.add_patient(lname, f"P{i}", name)
            folders.append(self.folder(name))
        return folders

    def folder(self, image_folder: str) -> Path:
        path = patient_dir(self.root, image_folder)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def documents(self, pat_num: int | None = None) -> list[dict[str, Any]]:
        table = Table("document", MetaData(), autoload_with=self.engine)
        query = select(table).order_by(table.c.DocNum)
        if pat_num is not None:
            query = query.where(table.c.PatNum == pat_num)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def image_folder(self, pat_num: int) -> str:
        with self.engine.connect() as conn:
            value = conn.execute(
                text("SELECT ImageFolder FROM patient WHERE PatNum = :p"), {"p": pat_num}
            ).scalar_one()
            return str(value)

    def registrar(self) -> Registrar:
        return Registrar(self.engine, Journal(self.state / "journal"), lock_timeout_s=30)

    def rescanner(self) -> Rescanner:
        return Rescanner(self.engine, self.registrar(), self.root, batch_size=50)

    def rescan(self, *, pat_num: int | None = None, dry_run: bool = False) -> Summary:
        return self.rescanner().run(pat_num=pat_num, dry_run=dry_run)

    def cli_env(self) -> dict[str, str]:
        """Environment for running the atoz-watcher command against this world."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATOZ_")}
        env.update(
            ATOZ_PATH=str(self.root),
            ATOZ_DATABASE_URL=self.url,
            ATOZ_STATE_DIR=str(self.state),
            # Files a test has just written count as settled (test_cli checks the default).
            ATOZ_WATCHER__OPEN_SETTLE_SECONDS="0.001",
        )
        return env


def _make_world(kind: str, tmp_path: Path) -> Iterator[World]:
    root = tmp_path / "OpenDentImages"
    root.mkdir()
    state = tmp_path / "state"
    with database_url(kind, tmp_path) as url:
        engine = make_engine(url, busy_timeout_s=30)
        try:
            if kind != "mariadb-opendental":
                create_missing_tables(engine)
            yield World(kind=kind, url=url, engine=engine, root=root, state=state)
        finally:
            engine.dispose()


@pytest.fixture(params=DB_KINDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world on each database: SQLite, MariaDB, and MariaDB with Open Dental's own schema."""
    yield from _make_world(request.param, tmp_path)


@pytest.fixture(params=DB_KINDS[:2])
def bare_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world on SQLite and on MariaDB whose tables atoz-watcher created (or will create)."""
    yield from _make_world(request.param, tmp_path)


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread running."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
