"""A practice-sized Open Dental database, made fast: for the front-desk page's bench and tests.

``open_dental_patient_columns`` gives a ``patient`` table the columns and indexes of Open
Dental's that the page reads and atoz-watcher's own model lacks: ``ChartNumber`` and
``Birthdate``, and the indexes Open Dental's schema has on the columns the page searches
(``indexLName`` LName(10), ``indexFName`` FName(10), ``indexLFName`` (LName, FName),
``ChartNumber``, ``BirthdateStatus`` (Birthdate, PatStatus)). On SQLite the prefix lengths are
dropped and the names carry the table's (SQLite's index names are global).

``fill_practice`` adds patients with names, chart numbers and birth dates, image categories, and
documents spread over them, by executemany in batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, inspect, text

from atoz_watcher.db.shape import TableShape

IMAGE_CATEGORY: Final = 18
BATCH: Final = 5000

# (name, MySQL column type and default, SQLite's)
_COLUMNS: Final = (
    ("ChartNumber", "varchar(100) NOT NULL DEFAULT ''", "TEXT NOT NULL DEFAULT ''"),
    ("Birthdate", "date NOT NULL DEFAULT '0001-01-01'", "TEXT NOT NULL DEFAULT '0001-01-01'"),
)
# (Open Dental's index name, MySQL's columns, SQLite's columns)
_INDEXES: Final = (
    ("indexLName", "LName(10)", "LName"),
    ("indexFName", "FName(10)", "FName"),
    ("indexLFName", "LName, FName", "LName, FName"),
    ("ChartNumber", "ChartNumber", "ChartNumber"),
    ("BirthdateStatus", "Birthdate, PatStatus", "Birthdate, PatStatus"),
)


def open_dental_patient_columns(conn: Connection) -> None:
    """Adds to ``patient`` the columns and indexes of Open Dental's the page uses, where absent."""
    inspector = inspect(conn)
    mysql = conn.dialect.name == "mysql"
    present = {column["name"].lower() for column in inspector.get_columns("patient")}
    for name, mysql_type, sqlite_type in _COLUMNS:
        if name.lower() not in present:
            conn.execute(
                text(
                    f"ALTER TABLE patient ADD COLUMN {name} {mysql_type if mysql else sqlite_type}"
                )
            )
    indexes = {index["name"] for index in inspector.get_indexes("patient")}
    for name, mysql_columns, sqlite_columns in _INDEXES:
        index = name if mysql else f"patient_{name}"
        if index not in indexes:
            columns = mysql_columns if mysql else sqlite_columns
            conn.execute(text(f"CREATE INDEX {index} ON patient ({columns})"))


@dataclass(frozen=True, slots=True)
class Practice:
    """What ``fill_practice`` made: the numbers a bench or a test picks from."""

    pat_nums: Sequence[int]
    categories: Sequence[int]  # DefNums of the image categories, in ItemOrder
    documents: int
    busiest: int  # the PatNum with the most documents


_LNAMES: Final = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
]
_FNAMES: Final = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
]
_CATEGORIES: Final = ("Misc", "X-Rays", "Photos", "Forms", "Letters", "Insurance", "Perio")


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert_all(engine: Engine, table: str, rows: Iterator[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        shape = TableShape.reflect(conn, table)
    for batch in _batches(rows, BATCH):
        with engine.begin() as conn:
            conn.execute(shape.table.insert(), [shape.complete(row) for row in batch])


def _max(engine: Engine, table: str, key: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COALESCE(MAX({key}), 0) FROM {table}")).scalar_one())


def fill_practice(
    engine: Engine, *, patients: int = 40_000, documents: int = 200_000, seed: int = 18
) -> Practice:
    """Fills ``engine``'s database (tables made, possibly empty) like a practice: ``patients``
    patients (names from common ones, ChartNumber "C<PatNum>", birth dates from 1930 to 2020,
    one in 200 deleted), seven image categories and ``documents`` documents over them (a few
    patients with many, most with a few; mount items among them)."""
    with engine.begin() as conn:
        open_dental_patient_columns(conn)
    pick = random.Random(seed)
    first_category = _max(engine, "definition", "DefNum") + 1
    _insert_all(
        engine,
        "definition",
        (
            {
                "Category": IMAGE_CATEGORY,
                "ItemOrder": order,
                "ItemName": name,
                "ItemValue": "",
                "ItemColor": 0,
                "IsHidden": 0,
            }
            for order, name in enumerate(_CATEGORIES)
        ),
    )
    categories = list(range(first_category, first_category + len(_CATEGORIES)))
    first_pat = _max(engine, "patient", "PatNum") + 1
    born = date(1930, 1, 1)

    def patient_rows() -> Iterator[dict[str, Any]]:
        for pat_num in range(first_pat, first_pat + patients):
            lname = (
                f"{pick.choice(_LNAMES)}{pat_num % 97:02d}" if pat_num % 3 else pick.choice(_LNAMES)
            )
            fname = pick.choice(_FNAMES)
            yield {
                "PatNum": pat_num,
                "LName": lname,
                "FName": fname,
                "PatStatus": 4 if pat_num % 200 == 0 else 0,
                "ImageFolder": f"{lname}{fname}{pat_num}",
                "ChartNumber": f"C{pat_num}",
                "Birthdate": (born + timedelta(days=pick.randrange(90 * 365))).isoformat(),
            }

    _insert_all(engine, "patient", patient_rows())
    pat_nums = list(range(first_pat, first_pat + patients))
    busiest = pat_nums[len(pat_nums) // 2]
    created = datetime(2015, 1, 1)

    def document_rows() -> Iterator[dict[str, Any]]:
        for n in range(documents):
            # One document in 50 goes to the busiest patient; the rest skew to the first ones.
            pat_num = busiest if n % 50 == 0 else pat_nums[int(len(pat_nums) * pick.random() ** 2)]
            yield {
                "PatNum": pat_num,
                "FileName": f"doc{n}.jpg",
                "Description": f"Document {n}",
                "DocCategory": pick.choice(categories),
                "DateCreated": created + timedelta(minutes=15 * n),
                "ImgType": 2,
                "MountItemNum": n if n % 100 == 1 else 0,
                "Note": "",
                "Signature": "",
            }

    _insert_all(engine, "document", document_rows())
    return Practice(pat_nums=pat_nums, categories=categories, documents=documents, busiest=busiest)
