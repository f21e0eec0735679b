"""Benchmark: the front-desk page on a practice-sized database, against the Documents API's list
of one patient measured in the same run.

Run from the project root::

    .venv/bin/python bench/ui.py [--requests 300] [--clients 5] [--patients 40000]
                                 [--documents 200000] [--no-sqlite] [--no-mariadb]

For each database (SQLite in a temporary directory; then MariaDB, in a database of its own with
Open Dental's own tables, dropped after) it makes a practice (tests/support/practice.py: 40,000
patients with names, chart numbers and birth dates and Open Dental's indexes on them, 200,000
documents over them, the activity log holding the newest 1,000 documents' arrivals and a
day's problems), an inbox with 20 unmatched files, and the image (and its ``Thumbnails/``
file, as the daemon leaves it) of the measured patient's newest document: the one with nearest
200 documents (a patient's page shows 200; the API lists them all). It then serves the
API with the page at /ui (``Components.server_app``, real uvicorn in a process of its own on
loopback), logs in ``--clients`` users, and measures, with that many users at once, each page:

- Today ``/ui/``; Today's rows feed ``/ui/today/rows?after=N`` (the three newest rows, as the
  poll brings them); Inbox ``/ui/inbox``; Patients ``/ui/patients?q=Smi``; one patient
  ``/ui/patients/P``; Health
  ``/ui/health``; a thumbnail ``/ui/documents/N/thumbnail``;
- the baseline: the API's ``GET /api/v1/documents?PatNum=P`` of the same patient.

It prints each page's p50/p99 and its ratio to the baseline's (goal: each p99 within 3x). It
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import harness  # noqa: F401 - puts the repository root on sys.path, for tests.support
import httpx
from argon2 import PasswordHasher
from PIL import Image
from sqlalchemy import Connection as SaConnection

from atoz_watcher.api import ApiServer
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.sections import (
    ApiKey,
    ApiSettings,
    InboxFolder,
    InboxSettings,
    ThumbnailSettings,
    UiSettings,
    UiUser,
)
from atoz_watcher.config.settings import Settings
from atoz_watcher.db import queries
from atoz_watcher.db.activity import ActivityLog, Arrival, Problem, Way
from atoz_watcher.db.engine import create_missing_tables, make_engine
from atoz_watcher.imaging.jobs import job_for_document
from atoz_watcher.imaging.queue import RenderNow
from atoz_watcher.imaging.render import thumbnail_renderer
from atoz_watcher.rules.layout import patient_dir
from atoz_watcher.system.logging import configure_logging
from atoz_watcher.system.status import StatusBoard
from tests.support.mariadb import mariadb_database
from tests.support.practice import fill_practice

AUTH = {"Authorization": "ODFHIR bench-dev/bench-cust"}
KEY = ApiKey(developer_key="bench-dev", customer_key="bench-cust")
PASSWORD = "bench-ui-password"  # noqa: S105 - a throw-away bench user's
UNMATCHED = 20
PATIENT_DOCUMENTS = 200  # the patient measured: the one with nearest this many documents
ARRIVALS = 1000
PROBLEMS = 100
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def settings_for(root: Path, url: str, state: Path, inbox: Path, users: int) -> Settings:
    hasher = PasswordHasher()  # the service's own parameters: logging in is not measured
    hashed = hasher.hash(PASSWORD)
    return Settings(
        atoz_path=root,
        database_url=url,
        state_dir=state,
        api=ApiSettings(keys=(KEY,)),
        thumbnails=ThumbnailSettings(enabled=False, backfill_days=0),
        inbox=InboxSettings(folders=(InboxFolder(path=inbox),)),
        ui=UiSettings(
            enabled=True,
            users=[UiUser(name=f"desk{n}", password_hash=hashed) for n in range(users)],
        ),
    )


@contextmanager
def database(kind: str, base: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite:///{base / 'state' / 'bench.sqlite3'}"
        engine = make_engine(url)
        create_missing_tables(engine)
        engine.dispose()
        yield url
        return
    with mariadb_database(opendental_schema=True) as url:
        yield url


def prepare(url: str, base: Path, args: argparse.Namespace) -> tuple[int, int, int, int]:
    """The practice, the activity log, the inbox's unmatched files and one image with its
    thumbnail; returns the patient measured (the one with nearest PATIENT_DOCUMENTS
    documents), how many documents it has, that image's DocNum and the newest DocNum."""
    root, state, inbox = base / "OpenDentImages", base / "state", base / "inbox"
    for folder in (root, state, inbox / "_Unmatched"):
        folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        fill_practice(engine, patients=args.patients, documents=args.documents)
        print(
            f"  made {args.patients} patients and {args.documents} documents in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        with engine.connect() as conn:
            pat_num, count = conn.exec_driver_sql(
                "SELECT PatNum, COUNT(*) AS n FROM document GROUP BY PatNum "
                f"ORDER BY ABS(COUNT(*) - {PATIENT_DOCUMENTS}), PatNum LIMIT 1"
            ).one()
            newest = max(line.doc_num for line in _newest(conn, int(pat_num)))
            (document,) = queries.document_files(
                conn, after_doc_num=newest - 1, limit=1, pat_num=int(pat_num)
            )
            last = int(conn.exec_driver_sql("SELECT MAX(DocNum) FROM document").scalar_one())
    finally:
        engine.dispose()
    image = patient_dir(root, document.image_folder) / document.file_name
    image.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (1600, 1200), (90, 120, 160)).save(image, "JPEG", quality=85)
    job = job_for_document(root, document)
    if not isinstance(job, str) and job is not None:
        RenderNow(thumbnail_renderer(ThumbnailSettings()))(job)
    log = ActivityLog.in_state_dir(state)
    log.arrived([Arrival(n, Way.FOLDER) for n in range(last - ARRIVALS + 1, last + 1)])
    now = datetime.now()
    for n in range(PROBLEMS):
        log.problem(
            Problem(
                "unreadable",
                "the file cannot be read yet",
                f"A/X{n}/f.jpg",
                now - timedelta(minutes=n),
            )
        )
    for n in range(UNMATCHED):
        name = f"scan{n:04d}.pdf"
        (inbox / "_Unmatched" / name).write_bytes(b"%PDF-1.4\n%bench\n")
        sidecar = {"reason": "no-route", "original": name, "when": now.isoformat()}
        (inbox / "_Unmatched" / f"{name}.reason.json").write_text(json.dumps(sidecar))
    return int(pat_num), int(count), document.doc_num, last


def _newest(conn: SaConnection, pat_num: int) -> list[queries.DocumentFile]:
    """The patient's documents with a file, the last page of them by DocNum."""
    found: list[queries.DocumentFile] = []
    after = 0
    while page := queries.document_files(conn, after_doc_num=after, limit=2000, pat_num=pat_num):
        found = page
        after = page[-1].doc_num
    return found


def serve(  # noqa: PLR0917 - a Process target takes positional arguments
    root: str, url: str, state: str, inbox: str, users: int, pipe: Connection
) -> None:
    """The server process: the API with the page at /ui, until told to stop."""
    configure_logging(level="warning")
    settings = settings_for(Path(root), url, Path(state), Path(inbox), users)
    engine = make_engine(url)
    components = Components.from_settings(settings, engine, inline_thumbnails=True)
    board = StatusBoard()
    board.update(started=datetime.now(), watch_mode="native", watched_folders=40_000)
    server = ApiServer(components.server_app(api=True, status=board), host="127.0.0.1", port=0)
    server.start()
    pipe.send(server.port)
    pipe.recv()
    server.stop()
    engine.dispose()


class Served:
    def __init__(self, base: Path, url: str, users: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        args = (
            str(base / "OpenDentImages"),
            url,
            str(base / "state"),
            str(base / "inbox"),
            users,
            child,
        )
        self._proc = context.Process(target=serve, args=args)
        self._proc.start()
        if not self._pipe.poll(120):
            raise SystemExit("the server did not start")
        self.url = f"http://127.0.0.1:{self._pipe.recv()}"

    def close(self) -> None:
        self._pipe.send("stop")
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


async def _log_in(client: httpx.AsyncClient, name: str) -> None:
    page = await client.get("/ui/login")
    found = _CSRF.search(page.text)
    if page.status_code != 200 or found is None:
        raise SystemExit(f"no login form ({page.status_code})")
    reply = await client.post(
        "/ui/login",
        data={"username": name, "password": PASSWORD, "csrf": found.group(1), "next": ""},
    )
    if reply.status_code != 303:
        raise SystemExit(f"{name} could not log in ({reply.status_code})")


async def _get(client: httpx.AsyncClient, path: str, count: int, record: list[float]) -> None:
    """``count`` GETs of ``path``, one after another; their latencies appended to ``record``."""
    for _ in range(count):
        started = time.perf_counter()
        reply = await client.get(path)
        elapsed = time.perf_counter() - started
        if reply.status_code != 200:
            raise SystemExit(f"{path}: {reply.status_code} {reply.text[:200]}")
        record.append(elapsed)


async def _measure(
    url: str, paths: dict[str, str], *, users: int, requests: int
) -> dict[str, list[float]]:
    """Each path's latencies: ``requests`` GETs over ``users`` logged-in users at once."""
    clients = [
        httpx.AsyncClient(base_url=url, timeout=120, follow_redirects=False) for _ in range(users)
    ]
    try:
        await asyncio.gather(*(_log_in(c, f"desk{n}") for n, c in enumerate(clients)))
        for client in clients:
            client.headers.update(AUTH)  # the API's key (the page ignores it)
        timings: dict[str, list[float]] = {}
        for label, path in paths.items():
            await asyncio.gather(*(_get(c, path, 3, []) for c in clients))  # warm-up
            found: list[float] = []
            each = max(1, requests // users)
            await asyncio.gather(*(_get(c, path, each, found) for c in clients))
            timings[label] = found
        return timings
    finally:
        for client in clients:
            await client.aclose()


def percentiles(timings: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def run_database(kind: str, base: Path, args: argparse.Namespace) -> list[str]:
    with database(kind, base) as url:
        pat_num, count, image_doc, last = prepare(url, base, args)
        served = Served(base, url, args.clients)
        try:
            paths = {
                "API GET /documents?PatNum (baseline)": (f"/api/v1/documents?PatNum={pat_num}"),
                "Today": "/ui/",
                "Today rows feed": f"/ui/today/rows?after={last - 3}",
                "Inbox": "/ui/inbox",
                "Patients search": "/ui/patients?q=Smi",
                "One patient": f"/ui/patients/{pat_num}",
                "Health": "/ui/health",
                "A thumbnail": f"/ui/documents/{image_doc}/thumbnail",
            }
            timings = asyncio.run(
                _measure(served.url, paths, users=args.clients, requests=args.requests)
            )
        finally:
            served.close()
    base_p50, base_p99 = percentiles(next(iter(timings.values())))
    name = "SQLite" if kind == "sqlite" else "MariaDB (Open Dental's tables)"
    lines = [
        (
            f"database: {name}; {args.patients} patients, {args.documents} documents; "
            f"{args.clients} users at once, {args.requests} requests a page"
        ),
        f"  the patient measured has {count} documents (the API lists them all, the page 200)",
        f"  {'page':<38} {'p50 ms':>8} {'p99 ms':>8} {'p50 x':>7} {'p99 x':>7}",
    ]
    for label, found in timings.items():
        p50, p99 = percentiles(found)
        lines.append(
            f"  {label:<38} {p50:8.1f} {p99:8.1f} {p50 / base_p50:6.2f}x {p99 / base_p99:6.2f}x"
        )
    lines.append("  (x: of the baseline's; goal: each page's p99 within 3x)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="GETs per page, all users")
    parser.add_argument("--clients", type=int, default=5, help="users logged in at once")
    parser.add_argument("--patients", type=int, default=40_000)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--no-sqlite", action="store_true", help="MariaDB only")
    parser.add_argument("--no-mariadb", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    configure_logging(level="warning")
    kinds = [k for k, off in (("sqlite", args.no_sqlite), ("mariadb", args.no_mariadb)) if not off]
    with tempfile.TemporaryDirectory(prefix="atoz-bench-ui-") as tmp:
        for kind in kinds:
            base = Path(tmp) / kind
            (base / "state").mkdir(parents=True)
            print("\n".join(run_database(kind, base, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
