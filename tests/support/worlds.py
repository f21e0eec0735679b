"""A test world: one A-to-Z root, one state folder and one database (SQLite or MariaDB).

The ``world`` and ``bare_world`` fixtures (tests/conftest.py) make one per database kind;
``make_world`` makes one of a given kind where a test needs its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, select, text

from atoz_watcher.db.engine import create_missing_tables, make_engine
from atoz_watcher.db.shape import TableShape
from atoz_watcher.ingest.registrar import Registrar
from atoz_watcher.ingest.rescan import Rescanner, Summary
from atoz_watcher.rules.layout import patient_dir
from atoz_watcher.system.journal import Journal
from tests.support.mariadb import mariadb_database

IMAGE_CATEGORY = 18
DB_KINDS = ("sqlite", "mariadb", "mariadb-opendental")


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

    def delete_patient(self, pat_num: int) -> None:
        """Open Dental's deletion: the row stays, PatStatus becomes 4 (Deleted)."""
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE patient SET PatStatus = 4 WHERE PatNum = :p"), {"p": pat_num})

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


def make_world(kind: str, tmp_path: Path) -> Iterator[World]:
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
