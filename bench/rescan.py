"""Benchmark: first registration and unchanged-tree rescan of a large A-to-Z tree.

Run from the project root::

    .venv/bin/python bench/rescan.py [--folders N] [--files-per-folder M] [--batch-size B]

Everything lives in a temporary directory that is removed at the end. The same run measures:

(a) the first registration of the whole tree by ``Rescanner(...).run()`` against a baseline of
    ``os.rename`` (for the ``_<DefNum>_`` files) plus raw ``sqlite3`` ``executemany`` inserts of
    the same rows, committed in batches of the same size, on an identical second tree and a
    second SQLite database (WAL) with the same schema. Goal: ours / baseline >= 0.1 (files/s).
(b) a rescan of the now registered, unchanged tree against a bare recursive ``os.scandir`` walk
    listing the same names, alternated over a few rounds, medians compared: a new Rescanner
    run once as ``atoz-watcher rescan`` runs it, one kept and run again (the daemon's) (goal:
    ours / walk < 2.0), and ``atoz-watcher rescan`` itself in a fresh process, interpreter
    start and imports included (goal: <= 1.5 x the walk; the walk in a fresh process of its
    own is printed too, and so is a fresh process that only imports the required packages:
    with the walk added, the least any fresh rescan built on them can cost).

Log lines go, as JSON, to a file in the temporary directory (what the service does on a pipe).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy
from harness import check, run_script, step, timed, verdict
from sqlalchemy import Engine, func, select

from atoz_watcher.db import queries
from atoz_watcher.db.engine import add_default_categories, create_missing_tables, make_engine
from atoz_watcher.db.models import IMG_TYPE_DOCUMENT, Document, Patient
from atoz_watcher.imaging.dicom import NO_WINDOWING
from atoz_watcher.ingest.registrar import Candidate, Plan, Registrar, document_row
from atoz_watcher.ingest.rescan import Rescanner, Summary
from atoz_watcher.rules.layout import folder_name, patient_dir
from atoz_watcher.rules.naming import ImageCategory, category_for
from atoz_watcher.system.journal import Journal
from atoz_watcher.system.logging import configure_logging

FIRST_GOAL = 0.1  # ours / baseline files per second, at least
RESCAN_GOAL = 2.0  # ours / bare walk seconds, under
FRESH_GOAL = 1.5  # atoz-watcher rescan in a fresh process / bare walk seconds, at most
FRESH_DEADLINE_S = 600
# What any rescan built on the project's required packages imports before its first step: the
# database layer, the settings and the logging. A fresh process importing only these, then
# exiting, is the fresh rescan's floor (with the walk added).
REQUIRED_IMPORTS = "import sqlalchemy, sqlmodel, pydantic_settings, structlog"
ADOPT_EVERY = 10  # every 10th patient has an empty ImageFolder, so its folder gets adopted
UNKNOWN_DEFNUM = 9999  # a prefix naming no category: filed under the default one

LAST_NAMES = (
    "Adams", "Baker", "Clark", "Davis", "Evans", "Foster", "García", "Harris", "Ito", "Jones",
    "King", "Lopez", "Miller", "Nguyen", "O'Brien", "Patel", "Quinn", "Reyes", "Smith",
    "Turner", "Underwood", "Vargas", "Walker", "Xu", "Young", "Zimmerman", "van Dyke", "Øster",
)  # fmt: skip
FIRST_NAMES = ("Ann", "Ben", "Chloé", "Dev", "Eve", "Finn", "Grace", "Hugo", "Ivy", "Jean-Luc")


# -- the tree ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Work:
    """Where the two trees, databases and our journal live, under one temporary directory."""

    base: Path

    @property
    def ours_root(self) -> Path:
        return self.base / "ours" / "OpenDentImages"

    @property
    def ours_db(self) -> Path:
        return self.base / "ours" / "atoz.sqlite3"

    @property
    def journal(self) -> Path:
        return self.base / "ours" / "journal"

    @property
    def baseline_root(self) -> Path:
        return self.base / "baseline" / "OpenDentImages"

    @property
    def baseline_db(self) -> Path:
        return self.base / "baseline" / "atoz.sqlite3"


@dataclass(frozen=True, slots=True)
class PatientSpec:
    pat_num: int
    lname: str
    fname: str
    folder: str  # the folder name Open Dental computes
    stored: bool  # ImageFolder already set (else it gets adopted)


@dataclass(frozen=True, slots=True)
class FileSpec:
    pat_num: int
    folder: str
    name: str  # as dropped
    final: str  # after the prefix is cut
    category: int  # DefNum the row gets


def make_patients(count: int) -> list[PatientSpec]:
    patients = []
    for index in range(count):
        pat_num = index + 1
        lname = LAST_NAMES[index % len(LAST_NAMES)]
        fname = FIRST_NAMES[(index // len(LAST_NAMES)) % len(FIRST_NAMES)]
        name = folder_name(lname, fname, pat_num)
        patients.append(PatientSpec(pat_num, lname, fname, name, index % ADOPT_EVERY != 0))
    return patients


def make_files(
    patients: Sequence[PatientSpec], per_folder: int, categories: Sequence[ImageCategory]
) -> list[FileSpec]:
    """Half the files carry a ``_<DefNum>_`` prefix (renamed on import), half are plain."""
    numbers = [c.def_num for c in categories] + [UNKNOWN_DEFNUM]
    files = []
    for patient in patients:
        for index in range(per_folder):
            if index % 2 == 0:
                number = numbers[(patient.pat_num + index) % len(numbers)]
                final = f"scan{index:04d}.jpg"
                name = f"_{number}_{final}"
            else:
                number = 0
                final = name = f"photo {index:04d}.png"
            category = category_for(number, categories)
            assert category is not None  # noqa: S101 - the default categories exist
            files.append(FileSpec(patient.pat_num, patient.folder, name, final, category))
    return files


def build_tree(root: Path, patients: Sequence[PatientSpec], files: Sequence[FileSpec]) -> None:
    for patient in patients:
        patient_dir(root, patient.folder).mkdir(parents=True)
    folders = {p.folder: patient_dir(root, p.folder) for p in patients}
    payload = b"\xff\xd8 bench \xff\xd9"
    for spec in files:
        with (folders[spec.folder] / spec.name).open("xb") as handle:
            handle.write(payload)


# -- the databases ------------------------------------------------------------------------------


def make_database(url: str) -> Engine:
    """Our schema and default categories, as ``atoz-watcher init-db`` makes them."""
    engine = make_engine(url)
    create_missing_tables(engine)
    with engine.begin() as conn:
        add_default_categories(conn)
    return engine


def insert_patients(engine: Engine, patients: Sequence[PatientSpec]) -> None:
    table = Patient.__table__  # type: ignore[attr-defined]
    rows = [
        {
            "PatNum": p.pat_num,
            "LName": p.lname,
            "FName": p.fname,
            "PatStatus": 0,
            "ImageFolder": p.folder if p.stored else "",
        }
        for p in patients
    ]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)


def document_count(engine: Engine) -> int:
    table = Document.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# -- the baseline -------------------------------------------------------------------------------


# The columns a registration varies per file; document_row() puts them first, in this order.
PER_FILE = ("PatNum", "FileName", "Description", "DocCategory", "ImgType")


def document_template(
    categories: Sequence[ImageCategory], now: datetime
) -> tuple[list[str], tuple[object, ...]]:
    """The columns ``registrar.document_row`` fills, in its order, and the values it gives a
    plain document in the columns after ``PER_FILE`` (dates as SQLAlchemy stores them)."""
    sample = Plan(Candidate(1, Path(), "x"), "x", categories[0].def_num, IMG_TYPE_DOCUMENT)
    row = document_row(sample, now=now, windowing=NO_WINDOWING)
    columns = list(row)
    check(tuple(columns[: len(PER_FILE)]) == PER_FILE, f"document_row() changed: {columns}")
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DateTime format
    rest = tuple(
        stamp if isinstance(value, datetime) else value
        for value in list(row.values())[len(PER_FILE) :]
    )
    return columns, rest


def baseline_register(
    db_path: Path,
    root: Path,
    files: Sequence[FileSpec],
    categories: Sequence[ImageCategory],
    batch_size: int,
) -> int:
    """``os.rename`` plus ``executemany``, committed every ``batch_size`` files, nothing else."""
    columns, rest = document_template(categories, datetime.now().replace(microsecond=0))
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    sql = f"INSERT INTO document ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    # Plain str paths and os.rename, as the baseline has it: no pathlib.
    folders = {spec.folder: os.fspath(patient_dir(root, spec.folder)) for spec in files}
    inserted = 0
    try:
        for start in range(0, len(files), batch_size):
            rows = []
            for spec in files[start : start + batch_size]:
                if spec.final != spec.name:
                    folder = folders[spec.folder]
                    os.rename(f"{folder}/{spec.name}", f"{folder}/{spec.final}")  # noqa: PTH104
                rows.append(
                    (spec.pat_num, spec.final, spec.final, spec.category, IMG_TYPE_DOCUMENT, *rest)
                )
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
            inserted += len(rows)
    finally:
        conn.close()
    return inserted


def same_rows(work: Work, categories: Sequence[ImageCategory]) -> bool:
    """Both document tables hold the same rows, DocNum and the times aside."""
    every, _ = document_template(categories, datetime.now())
    columns = [c for c in every if c not in {"DateCreated", "DateTStamp"}]
    query = f"SELECT {', '.join(columns)} FROM document ORDER BY PatNum, FileName"
    tables = []
    for path in (work.ours_db, work.baseline_db):
        with closing(sqlite3.connect(path)) as conn:
            tables.append(conn.execute(query).fetchall())
    return tables[0] == tables[1]


def bare_walk(root: Path) -> list[list[str]]:
    """root -> letter -> patient folder -> the plain files' names, ``os.scandir`` only."""
    listings: list[list[str]] = []
    with os.scandir(root) as letters:
        for letter in letters:
            if not letter.is_dir(follow_symlinks=False):
                continue
            with os.scandir(letter.path) as folders:
                for folder in folders:
                    if not folder.is_dir(follow_symlinks=False):
                        continue
                    with os.scandir(folder.path) as entries:
                        listings.append(
                            [e.name for e in entries if e.is_file(follow_symlinks=False)]
                        )
    return listings


# -- ours ---------------------------------------------------------------------------------------


def our_rescan(engine: Engine, work: Work, batch_size: int, *, keep: bool = True) -> Summary:
    """A new Rescanner's run; ``keep=False`` as ``atoz-watcher rescan`` runs it (FileNames read
    a letter folder at a time), minus argument parsing and printing."""
    registrar = Registrar(engine, Journal(work.journal))
    return Rescanner(engine, registrar, work.ours_root, batch_size=batch_size, keep=keep).run()


def fresh_rescan(work: Work, batch_size: int) -> str:
    """``atoz-watcher rescan`` in a process of its own (interpreter start and imports
    included); returns what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOZ_")}
    env.update(
        ATOZ_PATH=str(work.ours_root),
        ATOZ_DATABASE_URL=f"sqlite:///{work.ours_db}",
        ATOZ_STATE_DIR=str(work.base / "cli-state"),
        ATOZ_SCAN__BATCH_SIZE=str(batch_size),
    )
    done = subprocess.run(
        [sys.executable, "-m", "atoz_watcher", "rescan"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=FRESH_DEADLINE_S,
    )
    check(done.returncode == 0, f"atoz-watcher rescan failed: {done.stderr[-500:]}")
    return done.stdout


def fresh_walk(root: Path) -> None:
    """The bare walk in a process of its own: what a fresh process costs before any work."""
    script = (
        "import os, sys\n"
        "n = 0\n"
        "for l in os.scandir(sys.argv[1]):\n"
        "    if l.is_dir(follow_symlinks=False):\n"
        "        for f in os.scandir(l.path):\n"
        "            if f.is_dir(follow_symlinks=False):\n"
        "                files = os.scandir(f.path)\n"
        "                n += sum(1 for e in files if e.is_file(follow_symlinks=False))\n"
    )
    subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script, str(root)], check=True, timeout=FRESH_DEADLINE_S
    )


def fresh_imports() -> None:
    """A process of its own that imports the required packages and does nothing else."""
    subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", REQUIRED_IMPORTS], check=True, timeout=FRESH_DEADLINE_S
    )


# -- reporting ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--folders", type=int, default=20_000, help="patient folders")
    parser.add_argument("--files-per-folder", type=int, default=10, help="files in each")
    parser.add_argument("--batch-size", type=int, default=500, help="files per commit")
    parser.add_argument("--rounds", type=int, default=3, help="rescan/walk rounds, median")
    args = parser.parse_args(argv)
    for name in ("folders", "files_per_folder", "batch_size", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stdout
    total = args.folders * args.files_per_folder
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"tree: {args.folders} patient folders x {args.files_per_folder} files = {total} files "
        f"(1 in {ADOPT_EVERY} folders adopted, half the files with a _<DefNum>_ prefix); "
        f"batch size {args.batch_size}; {args.rounds} rescan rounds"
    )
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"sqlite {sqlite3.sqlite_version}, sqlalchemy {sqlalchemy.__version__}, "
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs"
    )

    with tempfile.TemporaryDirectory(prefix="atoz-bench-") as tmp:
        work = Work(Path(tmp))
        print(f"work dir: {work.base}")
        with (work.base / "log.jsonl").open("w", encoding="utf-8") as log_stream:
            configure_logging(level="info", stream=log_stream)
            print("setup:")
            patients = make_patients(args.folders)
            engine = make_database(f"sqlite:///{work.ours_db}")
            try:
                base_engine = make_database(f"sqlite:///{work.baseline_db}")
                base_engine.dispose()
                with engine.connect() as conn:
                    categories = queries.image_categories(conn)
                files = make_files(patients, args.files_per_folder, categories)
                with step(out, f"insert {len(patients)} patients"):
                    insert_patients(engine, patients)
                with step(out, f"build our tree ({len(files)} files)"):
                    build_tree(work.ours_root, patients, files)
                with step(out, f"build the baseline tree ({len(files)} files)"):
                    build_tree(work.baseline_root, patients, files)
                return run_measurements(args, engine, work, files, categories)
            finally:
                engine.dispose()


def run_measurements(
    args: argparse.Namespace,
    engine: Engine,
    work: Work,
    files: Sequence[FileSpec],
    categories: Sequence[ImageCategory],
) -> int:
    total = len(files)
    renamed = sum(1 for f in files if f.final != f.name)
    adopted = len(range(0, args.folders, ADOPT_EVERY))

    # (a) First registration.
    inserted, base_s = timed(
        lambda: baseline_register(
            work.baseline_db, work.baseline_root, files, categories, args.batch_size
        )
    )
    check(inserted == total, f"baseline inserted {inserted} rows, expected {total}")
    summary, ours_s = timed(lambda: our_rescan(engine, work, args.batch_size))
    check(summary.registered == total, f"we registered {summary.registered}, expected {total}")
    check(len(summary.adopted) == adopted, f"we adopted {len(summary.adopted)}, not {adopted}")
    check(document_count(engine) == total, "our document table does not hold every file")
    check(same_rows(work, categories), "the baseline's rows differ from ours")
    same_trees = bare_walk(work.ours_root) == bare_walk(work.baseline_root)
    check(same_trees, "the two trees differ after registration")
    base_rate, ours_rate = total / base_s, total / ours_s
    ratio = ours_rate / base_rate
    print(f"\n(a) first registration of {total} files ({renamed} renamed, {adopted} adopted)")
    print(
        f"  baseline (os.rename + sqlite3 executemany): {base_s:8.2f} s {base_rate:10.0f} files/s"
    )
    print(
        f"  ours (Rescanner.run):                       {ours_s:8.2f} s {ours_rate:10.0f} files/s"
    )
    ok = ratio >= FIRST_GOAL
    print(f"  ratio ours/baseline: {ratio:.3f}   goal >= {FIRST_GOAL}   {verdict(ok)}")

    # (b) Unchanged-tree rescan, alternated with the bare walk; all warmed once first.
    # "cold" is a new Rescanner each time, as `atoz-watcher rescan` runs: it reads every
    # document name. "kept" is one Rescanner run again and again, as the daemon's periodic
    # safety rescan runs: it walks the whole tree but reuses the names while the tables'
    # fingerprint is unchanged.
    walked = bare_walk(work.ours_root)
    check(sum(map(len, walked)) == total, "the bare walk does not list every file")
    kept = Rescanner(
        engine, Registrar(engine, Journal(work.journal)), work.ours_root, batch_size=args.batch_size
    )
    kept.run()
    times: dict[str, list[float]] = {
        "walk": [],
        "cold": [],
        "whole": [],
        "kept": [],
        "fresh": [],
        "fresh walk": [],
        "imports": [],
    }
    for _ in range(args.rounds):
        _, walk_s = timed(lambda: bare_walk(work.ours_root))
        times["walk"].append(walk_s)
        for kind, run in (
            ("cold", lambda: our_rescan(engine, work, args.batch_size, keep=False)),
            ("whole", lambda: our_rescan(engine, work, args.batch_size)),
            ("kept", kept.run),
        ):
            summary, rescan_s = timed(run)
            times[kind].append(rescan_s)
            check(summary.registered == 0, f"the unchanged rescan registered {summary.registered}")
            check(summary.already_known == total, "the unchanged rescan missed files")
        printed, fresh_s = timed(lambda: fresh_rescan(work, args.batch_size))
        check(f"already registered: {total}" in printed, f"the fresh rescan said: {printed}")
        check("registered: 0" in printed.splitlines(), f"the fresh rescan registered: {printed}")
        times["fresh"].append(fresh_s)
        _, fresh_walk_s = timed(lambda: fresh_walk(work.ours_root))
        times["fresh walk"].append(fresh_walk_s)
        _, imports_s = timed(fresh_imports)
        times["imports"].append(imports_s)
    print_rescans(total, times, args.rounds)
    return 0


def print_rescans(total: int, times: dict[str, list[float]], rounds: int) -> None:
    """Part (b)'s medians and ratios."""
    med = {kind: statistics.median(values) for kind, values in times.items()}
    print(f"\n(b) unchanged-tree rescan of {total} files, median of {rounds} rounds")
    print(f"  bare os.scandir walk:              {med['walk']:7.3f} s  ({_seconds(times['walk'])})")
    print(f"  ours, cold (a new Rescanner):      {med['cold']:7.3f} s  ({_seconds(times['cold'])})")
    print(
        f"  ours, whole tables (daemon's 1st): {med['whole']:7.3f} s  ({_seconds(times['whole'])})"
    )
    print(f"  ours, kept (daemon's rescan):      {med['kept']:7.3f} s  ({_seconds(times['kept'])})")
    print(
        f"  atoz-watcher rescan, fresh process:{med['fresh']:7.3f} s  ({_seconds(times['fresh'])})"
    )
    print(
        f"  the bare walk, fresh process:      {med['fresh walk']:7.3f} s  "
        f"({_seconds(times['fresh walk'])})"
    )
    for kind in ("cold", "whole", "kept"):
        ratio = med[kind] / med["walk"]
        ok = ratio < RESCAN_GOAL
        print(f"  ratio {kind}/walk: {ratio:.2f}   goal < {RESCAN_GOAL}   {verdict(ok)}")
    ratio = med["fresh"] / med["walk"]
    print(
        f"  ratio fresh/walk: {ratio:.2f}   goal <= {FRESH_GOAL}   {verdict(ratio <= FRESH_GOAL)}"
    )
    print(
        f"  ratio fresh/fresh walk: {med['fresh'] / med['fresh walk']:.2f}   (both new processes)"
    )
    floor = (med["imports"] + med["walk"]) / med["walk"]
    print(
        f"  a fresh process importing only the required packages: {med['imports']:.3f} s "
        f"({_seconds(times['imports'])}); with the walk, the floor of any fresh rescan built on "
        f"them: {floor:.2f}x the walk"
    )


def _seconds(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


if __name__ == "__main__":
    sys.exit(run_script(main, "bench/rescan.py"))
