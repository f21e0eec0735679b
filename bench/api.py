"""Benchmark: the Documents API against the framework's floor, in one run.

Run from the project root::

    .venv/bin/python bench/api.py [--requests 1000] [--clients 20] [--uploads 5]
                                  [--database-url mysql+pymysql://root@127.0.0.1:3306/DB]

It builds a throw-away A-to-Z root and database (SQLite in a temporary directory unless
``--database-url`` names an empty database) with one patient holding 200 documents, then
serves, each in a process of its own on loopback (real uvicorn, so client and server do not
share a GIL):

(a) ours: ``create_app(settings, engine)`` behind ``ApiServer``;
(b) the floor: a minimal FastAPI app on the same ``ApiServer`` whose GET returns the same JSON
    bytes as a constant and whose Upload reads the body and returns a constant 201.

It prints GET /documents?PatNum=N latency p50/p99 with ``--clients`` concurrent clients
(``--requests`` in all, after a warm-up), and Upload MB/s for a 10 MB file (best of
``--uploads``), for both, and ours as a ratio of the floor (goal >= 0.8x); then the server
process's peak memory during one Upload of that file, above its idle resident set (VmHWM,
reset just before; goal <= 2x the file's size), for both.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
from fastapi import FastAPI, Request, Response

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from atoz_watcher.api import ApiServer, create_app  # noqa: E402
from atoz_watcher.config import ApiKey, ApiSettings, Settings, ThumbnailSettings  # noqa: E402
from atoz_watcher.db.engine import (  # noqa: E402
    add_default_categories,
    create_missing_tables,
    make_engine,
)
from atoz_watcher.db.rows import blank_document  # noqa: E402
from atoz_watcher.db.shape import TableShape  # noqa: E402
from atoz_watcher.logging import configure_logging  # noqa: E402

DOCUMENTS = 200
UPLOAD_BYTES = 10 * 1024 * 1024
AUTH = {"Authorization": "ODFHIR bench-dev/bench-cust"}
KEY = ApiKey(developer_key="bench-dev", customer_key="bench-cust")


MB = 1024 * 1024
MAX_UPLOAD = 32 * MB


def settings_for(root: Path, url: str, state: Path, max_upload: int = MAX_UPLOAD) -> Settings:
    return Settings(
        atoz_path=root,
        database_url=url,
        state_dir=state,
        api=ApiSettings(keys=(KEY,), max_upload_bytes=max_upload),
        thumbnails=ThumbnailSettings(enabled=False),
    )


def fill(url: str) -> int:
    """One patient with DOCUMENTS documents; returns its PatNum."""
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
        return pat_num
    finally:
        engine.dispose()


def floor_app(list_body: bytes) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/documents")
    def documents() -> Response:
        return Response(list_body, media_type="application/json")

    @app.post("/api/v1/documents/Upload")
    async def upload(request: Request) -> Response:
        await request.body()
        return Response(b'{"DocNum":1}', status_code=201, media_type="application/json")

    return app


def serve(  # noqa: PLR0917 - a Process target takes positional arguments
    kind: str,
    root: str,
    url: str,
    state: str,
    list_body: bytes,
    pipe: Connection,
    max_upload: int = MAX_UPLOAD,
) -> None:
    """A server process: ours or the floor, on a free loopback port, until told to stop."""
    configure_logging(level="warning")
    engine = make_engine(url)
    settings = settings_for(Path(root), url, Path(state), max_upload)
    app = create_app(settings, engine) if kind == "ours" else floor_app(list_body)
    server = ApiServer(app, host="127.0.0.1", port=0)
    server.start()
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


async def _latencies(url: str, pat_num: int, *, requests: int, clients: int) -> list[float]:
    timings: list[float] = []
    per_client = max(1, requests // clients)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=60) as api:

        async def client(count: int, record: bool) -> None:
            for _ in range(count):
                started = time.perf_counter()
                reply = await api.get("/api/v1/documents", params={"PatNum": pat_num})
                elapsed = time.perf_counter() - started
                if reply.status_code != 200 or reply.content.count(b'"DocNum"') != DOCUMENTS:
                    raise SystemExit(f"unexpected reply {reply.status_code} from {url}")
                if record:
                    timings.append(elapsed)

        await asyncio.gather(*(client(3, record=False) for _ in range(clients)))  # warm-up
        await asyncio.gather(*(client(per_client, record=True) for _ in range(clients)))
    return timings


def latency(url: str, pat_num: int, *, requests: int, clients: int) -> tuple[float, float]:
    timings = asyncio.run(_latencies(url, pat_num, requests=requests, clients=clients))
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


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


def upload_peak(served: Served, pat_num: int, data: bytes) -> float:
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


def measure_upload(served: Served, pat_num: int, data: bytes, *, rounds: int) -> UploadFigures:
    peak = upload_peak(served, pat_num, data)  # first: no earlier Upload's freed memory to reuse
    return UploadFigures(
        rate=upload_rate(served.url, pat_num, data, rounds=rounds, encoded=False),
        encoded_rate=upload_rate(served.url, pat_num, data, rounds=rounds, encoded=True),
        peak=peak,
    )


def print_upload(ours: UploadFigures, floor: UploadFigures, size: int) -> None:
    """Throughput against the floor, and the peak against the file's size."""
    file_mb = size / MB
    print(f"Upload of {file_mb:.0f} MB (MB/s: client encodes the JSON / JSON encoded before):")
    for name, figures in (("ours", ours), ("floor", floor)):
        print(
            f"  {name:6s} {figures.rate:7.1f} / {figures.encoded_rate:7.1f} MB/s   "
            f"peak {figures.peak:6.1f} MB above idle"
        )
    print(
        f"  ratio  {ours.rate / floor.rate:7.2f}x / {ours.encoded_rate / floor.encoded_rate:.2f}x"
        " of the floor's rate (goal >= 0.8x)"
    )
    print(f"  peak   {ours.peak / file_mb:7.2f}x the file's size (goal <= 2x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--database-url", default="", help="an empty database (default SQLite)")
    args = parser.parse_args(argv)
    configure_logging(level="warning")

    with tempfile.TemporaryDirectory(prefix="atoz-bench-api-") as tmp:
        base = Path(tmp)
        root, state = base / "OpenDentImages", base / "state"
        root.mkdir()
        url = args.database_url or f"sqlite:///{state / 'bench.sqlite3'}"
        pat_num = fill(url)
        data = os.urandom(UPLOAD_BYTES)

        ours = Served("ours", root, url, state, b"")
        try:
            with httpx.Client(base_url=ours.url, headers=AUTH) as api:
                list_body = api.get("/api/v1/documents", params={"PatNum": pat_num}).content
            ours_p50, ours_p99 = latency(
                ours.url, pat_num, requests=args.requests, clients=args.clients
            )
            ours_upload = measure_upload(ours, pat_num, data, rounds=args.uploads)
        finally:
            ours.close()
        floor = Served("floor", root, url, state, list_body)
        try:
            floor_p50, floor_p99 = latency(
                floor.url, pat_num, requests=args.requests, clients=args.clients
            )
            floor_upload = measure_upload(floor, pat_num, data, rounds=args.uploads)
        finally:
            floor.close()

    database = "MariaDB/MySQL" if args.database_url else "SQLite"
    print(f"database: {database}; {DOCUMENTS} documents; response {len(list_body)} bytes")
    print(f"GET /documents, {args.clients} concurrent clients, {args.requests} requests:")
    print(f"  ours   p50 {ours_p50:7.1f} ms   p99 {ours_p99:7.1f} ms")
    print(f"  floor  p50 {floor_p50:7.1f} ms   p99 {floor_p99:7.1f} ms")
    print(f"  ratio  p50 {ours_p50 / floor_p50:7.2f}x     p99 {ours_p99 / floor_p99:7.2f}x")
    print(f"(Upload rate: best of {args.uploads})")
    print_upload(ours_upload, floor_upload, UPLOAD_BYTES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
