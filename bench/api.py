"""Benchmark: the Documents API against the framework's floor, on SQLite and MariaDB, in one run.

Run from the project root::

    .venv/bin/python bench/api.py [--requests 1000] [--clients 20] [--rounds 4] [--uploads 5]
                                  [--burst 2000] [--bursts 2]
                                  [--mariadb mysql+pymysql://root@127.0.0.1:3306 | --no-mariadb]

For each database (SQLite in a temporary directory; then MariaDB, in a database of its own made
on that server and dropped after) it builds a throw-away A-to-Z root with one patient holding
200 documents and 100 more patients with their folders, then serves, each in a process of its
own on loopback (real uvicorn, so client and server do not share a GIL):

(a) ours: ``build_api(settings, engine)`` behind ``ApiServer``;
(b) the floor: a minimal FastAPI app on the same ``ApiServer`` whose GET returns the same JSON
    bytes as a constant and whose Upload reads the body and returns a constant 201.

It prints GET /documents?PatNum=N latency p50/p99 with ``--clients`` concurrent clients
(``--requests`` in all for each server, after a warm-up) for both, and ours as a ratio of the
floor. Both servers run at once and are measured in turns, ``--rounds`` turns each, ours first
in one round and the floor first in the next, so that a change of the machine's load falls on
both; the percentiles are of all the rounds' requests together. Then both again while the
daemon (``atoz-watcher run``, a process of its own on the same database) registers a burst of
``--burst`` files dropped into the 100 folders at once, counting the requests made from the
drop until the last file's row is there: ``--bursts`` bursts for each server, in turns as
above. The floor reads no database, so under a burst it shows what the daemon's CPU alone does
to an answer; ours is reported against it and against the idle floor. Then Upload MB/s for a
10 MB file (best of ``--uploads``), for both, and ours as a ratio of the floor (goal >= 0.8x);
then the server process's peak memory during one Upload of that file, above its idle resident
set (VmHWM, reset just before; goal <= 2x the file's size), for both. The floor's server also
answers Upload under ``/stored`` by writing the body, once it has all come, to a new file, then
fsync, rename and the folder's fsync: the plain way to make a file durable, measured in the
same turns and printed beside ours (no goal: it shows how much of the gap to the floor is the
disk's). SQLite, then MariaDB.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import pymysql
from fastapi import FastAPI, Request, Response
from harness import log_events, poll
from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

from atoz_watcher.api import ApiServer
from atoz_watcher.app.wiring import build_api
from atoz_watcher.config.sections import ApiKey, ApiSettings, ThumbnailSettings
from atoz_watcher.config.settings import Settings
from atoz_watcher.db.engine import (
    add_default_categories,
    create_missing_tables,
    make_engine,
    read_engine,
)
from atoz_watcher.db.rows import blank_document
from atoz_watcher.db.shape import TableShape
from atoz_watcher.rules.layout import patient_dir
from atoz_watcher.system.logging import configure_logging
from atoz_watcher.system.memory import freeze_startup_objects

DOCUMENTS = 200
BURST_PATIENTS = 100
DAEMON_DEADLINE_S = 300.0
UPLOAD_BYTES = 10 * 1024 * 1024
AUTH = {"Authorization": "ODFHIR bench-dev/bench-cust"}
KEY = ApiKey(developer_key="bench-dev", customer_key="bench-cust")


MB = 1024 * 1024
MAX_UPLOAD = 32 * MB


def settings_for(
    root: Path, url: str, state: Path, max_upload: int = MAX_UPLOAD, read_threads: int = 0
) -> Settings:
    """The bench's settings; ``read_threads`` 0 keeps ``[api] read_threads``'s default."""
    api = ApiSettings(keys=(KEY,), max_upload_bytes=max_upload)
    if read_threads:
        api = api.model_copy(update={"read_threads": read_threads})
    return Settings(
        atoz_path=root,
        database_url=url,
        state_dir=state,
        api=api,
        thumbnails=ThumbnailSettings(enabled=False),
    )


def fill(url: str, root: Path) -> tuple[int, list[Path]]:
    """One patient with DOCUMENTS documents, and BURST_PATIENTS patients with their folders
    (for the burst); returns the PatNum and those folders."""
    engine = make_engine(url)
    try:
        create_missing_tables(engine)
        with engine.begin() as conn:
            add_default_categories(conn)
            patients = TableShape.reflect(conn, "patient")
            pat = conn.execute(
                patients.table.insert(),
                [patients.complete({"LName": "Bench", "FName": "Mark", "ImageFolder": ""})],
            ).inserted_primary_key
            if pat is None:
                raise SystemExit("the database returned no PatNum")
            pat_num = int(pat[0])
            names = [f"BurstP{n}x" for n in range(BURST_PATIENTS)]
            conn.execute(
                patients.table.insert(),
                [
                    patients.complete({"LName": "Burst", "FName": f"P{n}", "ImageFolder": name})
                    for n, name in enumerate(names)
                ],
            )
            folders = [patient_dir(root, name) for name in names]
            for folder in folders:
                folder.mkdir(parents=True)
            shape = TableShape.reflect(conn, "document")
            start = datetime(2020, 1, 1, 8, 0, 0)
            conn.execute(
                shape.table.insert(),
                [
                    shape.complete(
                        blank_document(
                            PatNum=pat_num,
                            FileName=f"BenchMark{n}.jpg",
                            Description=f"Scan {n}",
                            DocCategory=1,
                            DateCreated=start + timedelta(hours=7 * n),
                            ToothNumbers="1,2,3",
                        )
                    )
                    for n in range(DOCUMENTS)
                ],
            )
        return pat_num, folders
    finally:
        engine.dispose()


# Where the floor server also answers Upload as a durable store (see floor_app).
STORED_FLOOR = "/stored"


@dataclass(frozen=True)
class Endpoint:
    """Another base URL of a served process (the floor's stored Upload)."""

    url: str
    pid: str


def floor_app(list_body: bytes, root: Path) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/documents")
    def documents() -> Response:
        return Response(list_body, media_type="application/json")

    @app.post("/api/v1/documents/Upload")
    async def upload(request: Request) -> Response:
        await request.body()
        return Response(b'{"DocNum":1}', status_code=201, media_type="application/json")

    # The same, plus what makes a file durable where ours puts it: the body written to a new
    # file in the root, fsynced, renamed into a folder, the folder fsynced (no parsing, no
    # decoding, no database). Not a goal's baseline: it shows how much of the gap to the
    # floor is the disk's.
    @app.post(f"{STORED_FLOOR}/api/v1/documents/Upload")
    async def upload_stored(request: Request) -> Response:
        body = await request.body()
        await run_in_threadpool(store_durably, root, body)
        return Response(b'{"DocNum":1}', status_code=201, media_type="application/json")

    return app


def store_durably(root: Path, body: bytes) -> None:
    """``body`` as a new file in ``root``'s "Stored" folder, made durable by the steps ours
    takes (fsync, rename, the folder's fsync), all of them after the body has come."""
    folder = root / "Stored"
    folder.mkdir(exist_ok=True)
    fd, name = tempfile.mkstemp(dir=root, prefix=".stored-")
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    Path(name).rename(folder / Path(name).name.removeprefix("."))
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def serve(  # noqa: PLR0917 - a Process target takes positional arguments
    kind: str,
    root: str,
    url: str,
    state: str,
    list_body: bytes,
    pipe: Connection,
    max_upload: int = MAX_UPLOAD,
) -> None:
    """A server process on a free loopback port, until told to stop: "floor", "ours", or
    "ours:N", ours with ``[api] read_threads`` N."""
    configure_logging(level="warning")
    engine = make_engine(url)
    name, _, threads = kind.partition(":")
    settings = settings_for(Path(root), url, Path(state), max_upload, int(threads or 0))
    app = build_api(settings, engine) if name == "ours" else floor_app(list_body, Path(root))
    server = ApiServer(app, host="127.0.0.1", port=0)
    server.start()
    freeze_startup_objects()  # as `atoz-watcher api` and `run` do, for both servers
    pipe.send(server.port)
    pipe.recv()  # the stop message
    server.stop()
    engine.dispose()


class Served:
    def __init__(  # noqa: PLR0917 - as it always was, plus the Upload limit
        self,
        kind: str,
        root: Path,
        url: str,
        state: Path,
        list_body: bytes,
        max_upload: int = MAX_UPLOAD,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._proc = context.Process(
            target=serve, args=(kind, str(root), url, str(state), list_body, child, max_upload)
        )
        self._proc.start()
        if not self._pipe.poll(60):
            raise SystemExit(f"the {kind} server did not start")
        self.url = f"http://127.0.0.1:{self._pipe.recv()}"

    @property
    def pid(self) -> str:
        return str(self._proc.pid)

    def close(self) -> None:
        self._pipe.send("stop")
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


async def gather_latencies(
    url: str,
    pat_num: int,
    *,
    requests: int,
    clients: int,
    during: Callable[[], threading.Event] | None = None,
) -> list[float]:
    """Latencies of ``requests`` GETs over ``clients`` clients; with ``during``, called after
    the warm-up, of every GET that starts before the event it returns is set."""
    timings: list[float] = []
    per_client = max(1, requests // clients)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=60) as api:

        async def one() -> float:
            started = time.perf_counter()
            reply = await api.get("/api/v1/documents", params={"PatNum": pat_num})
            elapsed = time.perf_counter() - started
            if reply.status_code != 200 or reply.content.count(b'"DocNum"') != DOCUMENTS:
                raise SystemExit(f"unexpected reply {reply.status_code} from {url}")
            return elapsed

        async def client(count: int, record: bool) -> None:
            for _ in range(count):
                elapsed = await one()
                if record:
                    timings.append(elapsed)

        async def client_until(done: threading.Event) -> None:
            while not done.is_set():
                timings.append(await one())

        await asyncio.gather(*(client(3, record=False) for _ in range(clients)))  # warm-up
        if during is None:
            await asyncio.gather(*(client(per_client, record=True) for _ in range(clients)))
        else:
            done = during()
            await asyncio.gather(*(client_until(done) for _ in range(clients)))
    return timings


def percentiles(timings: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def in_turns(
    rounds: int,
    measure: Callable[[str, int], list[float]],
    kinds: Sequence[str] = ("ours", "floor"),
) -> dict[str, list[float]]:
    """``measure(kind, round)`` for each of ``kinds`` in turns, ``rounds`` times each (in
    their order in even rounds, the other way round in odd ones): every latency of each."""
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    for turn in range(rounds):
        for kind in kinds if turn % 2 == 0 else tuple(reversed(kinds)):
            timings[kind] += measure(kind, turn)
    return timings


class Daemon:
    """``atoz-watcher run`` on the bench's root and database, its JSON log in a file."""

    def __init__(self, root: Path, url: str, state: Path) -> None:
        state.mkdir(parents=True, exist_ok=True)
        self.log_path = state / "daemon.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATOZ_")}
        env.update(
            ATOZ_PATH=str(root),
            ATOZ_DATABASE_URL=url,
            ATOZ_STATE_DIR=str(state),
            ATOZ_METRICS__ENABLED="false",
            ATOZ_THUMBNAILS__ENABLED="false",  # registration alone, not image decoding
            # A file counts as written once closed: the whole burst is registered at once.
            ATOZ_WATCHER__OPEN_SETTLE_SECONDS="0.001",
        )
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atoz_watcher", "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def wait_caught_up(self) -> None:
        def caught_up() -> bool | None:
            if self.proc.poll() is not None:
                raise SystemExit(f"the daemon exited: see {self.log_path}")
            return True if log_events(self.log_path, "rescan.finished") else None

        if poll(caught_up, DAEMON_DEADLINE_S) is None:
            raise SystemExit("the daemon did not finish its start-up rescan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def burst_latency(
    url: str,
    pat_num: int,
    *,
    clients: int,
    database_url: str,
    folders: list[Path],
    files: int,
    prefix: str,
) -> tuple[list[float], float]:
    """GET latencies while the daemon registers ``files`` files (named ``prefix`` and a number)
    dropped at once, and the seconds from the drop to the last row."""
    engine = read_engine(make_engine(database_url))
    registered_after = 0.0

    def drop() -> threading.Event:
        done = threading.Event()

        def watch() -> None:
            nonlocal registered_after
            dropped = time.perf_counter()
            for n in range(files):  # while the clients run: the daemon starts at the first
                (folders[n % len(folders)] / f"{prefix}{n}.jpg").write_bytes(b"burst")

            def all_there() -> bool | None:
                with engine.connect() as conn:
                    count = conn.execute(
                        text("SELECT COUNT(*) FROM document WHERE FileName LIKE :names"),
                        {"names": f"{prefix}%"},
                    ).scalar_one()
                return True if int(count) >= files else None

            poll(all_there, DAEMON_DEADLINE_S)
            registered_after = time.perf_counter() - dropped
            done.set()

        threading.Thread(target=watch, daemon=True).start()
        return done

    try:
        timings = asyncio.run(
            gather_latencies(url, pat_num, requests=0, clients=clients, during=drop)
        )
    finally:
        engine.dispose()
    if registered_after >= DAEMON_DEADLINE_S:
        raise SystemExit(f"the daemon did not register the {files} files")
    return timings, registered_after


def upload_body(pat_num: int, data: bytes) -> bytes:
    """The JSON of an Upload, encoded once (the client's own work is not what is measured)."""
    body = {"PatNum": pat_num, "rawBase64": base64.b64encode(data).decode(), "extension": ".bin"}
    return json.dumps(body).encode()


def upload_rate(url: str, pat_num: int, data: bytes, *, rounds: int, encoded: bool) -> float:
    """MB/s of the best of ``rounds`` Uploads of ``data``: with ``encoded``, the JSON is made
    once beforehand (the server's time only); else the client encodes it for each request,
    as issue 14 measured (a constant added to both sides)."""
    body = upload_body(pat_num, data)
    fields = {"PatNum": pat_num, "rawBase64": base64.b64encode(data).decode(), "extension": ".bin"}
    best = float("inf")
    with httpx.Client(base_url=url, headers=AUTH, timeout=120) as api:
        for _ in range(rounds):
            started = time.perf_counter()
            if encoded:
                reply = api.post("/api/v1/documents/Upload", content=body)
            else:
                reply = api.post("/api/v1/documents/Upload", json=fields)
            elapsed = time.perf_counter() - started
            if reply.status_code != 201:
                raise SystemExit(f"upload failed on {url}: {reply.status_code} {reply.text[:200]}")
            best = min(best, elapsed)
    return len(data) / best / 1e6


def _status_kb(pid: str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/status (Linux only)")


def upload_peak(served: Served | Endpoint, pat_num: int, data: bytes) -> float:
    """MB the server process's resident set rose above idle during one Upload of ``data``
    (its VmHWM, reset just before the Upload by writing 5 to /proc/<pid>/clear_refs)."""
    body = upload_body(pat_num, data)
    with httpx.Client(base_url=served.url, headers=AUTH, timeout=300) as api:
        api.post("/api/v1/documents/Upload", content=upload_body(pat_num, b"warm"))
        idle = _status_kb(served.pid, "VmRSS")
        Path(f"/proc/{served.pid}/clear_refs").write_text("5")
        reply = api.post("/api/v1/documents/Upload", content=body)
        if reply.status_code not in {201, 200}:
            raise SystemExit(f"upload failed: {reply.status_code} {reply.text[:200]}")
        return (_status_kb(served.pid, "VmHWM") - idle) / 1024


@dataclass(frozen=True, slots=True)
class UploadFigures:
    rate: float  # MB/s, the client encoding the JSON for each request
    encoded_rate: float  # MB/s, the JSON encoded beforehand
    peak: float  # MB above idle during one Upload, measured first


def measure_uploads(
    served: dict[str, Served | Endpoint], pat_num: int, data: bytes, *, rounds: int
) -> dict[str, UploadFigures]:
    """Each server's peak (first: no earlier Upload's freed memory to reuse), then its best
    rates over ``rounds`` turns, ours and the floor one Upload each in turn."""
    peaks = {kind: upload_peak(server, pat_num, data) for kind, server in served.items()}
    rates: dict[tuple[str, bool], float] = {}
    for _ in range(rounds):
        for kind, server in served.items():
            for encoded in (False, True):
                rate = upload_rate(server.url, pat_num, data, rounds=1, encoded=encoded)
                rates[kind, encoded] = max(rate, rates.get((kind, encoded), 0.0))
    return {
        kind: UploadFigures(
            rate=rates[kind, False], encoded_rate=rates[kind, True], peak=peaks[kind]
        )
        for kind in served
    }


def upload_lines(ours: UploadFigures, floor: UploadFigures, size: int) -> list[str]:
    """Throughput against the floor, and the peak against the file's size."""
    file_mb = size / MB
    return [
        f"Upload of {file_mb:.0f} MB (MB/s: client encodes the JSON / JSON encoded before):",
        *(
            f"  {name:6s} {figures.rate:7.1f} / {figures.encoded_rate:7.1f} MB/s   "
            f"peak {figures.peak:6.1f} MB above idle"
            for name, figures in (("ours", ours), ("floor", floor))
        ),
        (
            f"  ratio  {ours.rate / floor.rate:7.2f}x / "
            f"{ours.encoded_rate / floor.encoded_rate:.2f}x of the floor's rate (goal >= 0.8x)"
        ),
        f"  peak   {ours.peak / file_mb:7.2f}x the file's size (goal <= 2x)",
    ]


def stored_lines(ours: UploadFigures, stored: UploadFigures) -> list[str]:
    """Ours against the floor that also makes the file durable (no goal: where the gap is)."""
    return [
        (
            f"  the floor storing the body durably (write, fsync, rename, fsync the folder): "
            f"{stored.rate:.1f} / {stored.encoded_rate:.1f} MB/s"
        ),
        (
            f"  ours against it {ours.rate / stored.rate:.2f}x / "
            f"{ours.encoded_rate / stored.encoded_rate:.2f}x"
        ),
    ]


@contextmanager
def mariadb_database(server: str) -> Iterator[str]:
    """A database of its own on the MariaDB server at ``server``, dropped after."""
    parsed = make_url(server)
    name = f"atoz_bench_api_{uuid.uuid4().hex[:12]}"
    options = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 3306,
        "user": parsed.username or "root",
        "password": parsed.password or "",
        "autocommit": True,
    }
    admin = pymysql.connect(**options)
    with admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        yield f"{parsed.set(database=name).render_as_string(hide_password=False)}?charset=utf8mb4"
    finally:
        admin = pymysql.connect(**options)
        with admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


def latency_lines(name: str, timings: list[float], floor: list[float]) -> list[str]:
    p50, p99 = percentiles(timings)
    floor_p50, floor_p99 = percentiles(floor)
    return [
        f"  {name:6s} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({len(timings)} requests)",
        f"  ratio  p50 {p50 / floor_p50:7.2f}x     p99 {p99 / floor_p99:7.2f}x (goal: p99 <= 2.0x)",
    ]


def run_database(url: str, base: Path, args: argparse.Namespace, data: bytes) -> list[str]:
    """Every figure on one database, as the lines to print."""
    root, state = base / "OpenDentImages", base / "state"
    root.mkdir()
    state.mkdir(exist_ok=True)
    pat_num, folders = fill(url, root)
    per_round = max(args.clients, args.requests // args.rounds)

    ours = Served("ours", root, url, state, b"")
    try:
        with httpx.Client(base_url=ours.url, headers=AUTH) as api:
            list_body = api.get("/api/v1/documents", params={"PatNum": pat_num}).content
        floor = Served("floor", root, url, state, list_body)
        try:
            urls = {"ours": ours.url, "floor": floor.url}
            idle = in_turns(
                args.rounds,
                lambda kind, _turn: asyncio.run(
                    gather_latencies(urls[kind], pat_num, requests=per_round, clients=args.clients)
                ),
            )
            daemon = Daemon(root, url, base / "daemon-state")
            took: dict[str, list[float]] = {"ours": [], "floor": []}
            try:
                daemon.wait_caught_up()

                def during_burst(kind: str, turn: int) -> list[float]:
                    timings, seconds = burst_latency(
                        urls[kind],
                        pat_num,
                        clients=args.clients,
                        database_url=url,
                        folders=folders,
                        files=args.burst,
                        prefix=f"burst{turn}{kind}",
                    )
                    took[kind].append(seconds)
                    return timings

                busy = in_turns(args.bursts, during_burst)
            finally:
                daemon.stop()
            stored = Endpoint(floor.url + STORED_FLOOR, floor.pid)
            uploads = measure_uploads(
                {"ours": ours, "floor": floor, "stored": stored}, pat_num, data, rounds=args.uploads
            )
        finally:
            floor.close()
    finally:
        ours.close()

    database = "SQLite" if url.startswith("sqlite") else "MariaDB"
    floor_p50, floor_p99 = percentiles(idle["floor"])
    busy_floor_p50, busy_floor_p99 = percentiles(busy["floor"])
    busy_p50, busy_p99 = percentiles(busy["ours"])
    seconds = ", ".join(f"{s:.1f}" for s in took["ours"] + took["floor"])
    return [
        f"database: {database}; {DOCUMENTS} documents; response {len(list_body)} bytes",
        (
            f"GET /documents, {args.clients} concurrent clients, ours and the floor in turns "
            f"({args.rounds} rounds of {per_round} requests each):"
        ),
        *latency_lines("ours", idle["ours"], idle["floor"]),
        f"  floor  p50 {floor_p50:7.1f} ms   p99 {floor_p99:7.1f} ms",
        (
            f"GET /documents while the daemon registers {args.burst} files dropped at once "
            f"({args.bursts} bursts for each server, in turns; first file to last row: "
            f"{seconds} s):"
        ),
        *latency_lines("ours", busy["ours"], busy["floor"]),
        f"  floor  p50 {busy_floor_p50:7.1f} ms   p99 {busy_floor_p99:7.1f} ms   (bursts too)",
        (
            f"  ours under bursts against the idle floor: p50 {busy_p50 / floor_p50:.2f}x, "
            f"p99 {busy_p99 / floor_p99:.2f}x"
        ),
        f"(Upload rate: best of {args.uploads}, ours and the floor in turns)",
        *upload_lines(uploads["ours"], uploads["floor"], UPLOAD_BYTES),
        *stored_lines(uploads["ours"], uploads["stored"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4, help="turns of each server's GETs")
    parser.add_argument("--bursts", type=int, default=2, help="bursts for each server")
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--burst", type=int, default=2000, help="files the daemon registers")
    parser.add_argument(
        "--mariadb",
        default="mysql+pymysql://root@127.0.0.1:3306",
        help="a MariaDB/MySQL server where the bench may create and drop a database",
    )
    parser.add_argument("--no-mariadb", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    configure_logging(level="warning")
    data = os.urandom(UPLOAD_BYTES)

    with tempfile.TemporaryDirectory(prefix="atoz-bench-api-") as tmp:
        sqlite_base = Path(tmp) / "sqlite"
        sqlite_base.mkdir()
        url = f"sqlite:///{sqlite_base / 'state' / 'bench.sqlite3'}"
        print("\n".join(run_database(url, sqlite_base, args, data)), flush=True)
        if not args.no_mariadb:
            maria_base = Path(tmp) / "mariadb"
            maria_base.mkdir()
            with mariadb_database(args.mariadb) as maria_url:
                print("\n".join(run_database(maria_url, maria_base, args, data)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
