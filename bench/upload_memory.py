"""Benchmark: the memory API Uploads leave behind, against as many GETs, in one run.

Run from the project root::

    .venv/bin/python bench/upload_memory.py [--requests 1500] [--warmup 50]

It builds a throw-away A-to-Z root and SQLite database (in a temporary directory, removed at
the end) with two patients, and calls the real ``build_api(settings, engine)`` in this process
through FastAPI's TestClient (thumbnails off, as in the load test's split that found Uploads
to be the cause). After ``--warmup`` Uploads and GETs (so both paths have compiled their
statements and warmed the allocator), it measures, one after the other:

(a) the baseline: ``--requests`` GET /api/v1/documents?PatNum= of a patient with 20 documents;
(b) ``--requests`` POST /api/v1/documents/Upload of a small PNG (base64) to the other patient.

Every 100 requests it prints the process's RSS (after ``gc.collect()``) and the size of the
engine's compiled-statement cache, and at the end each phase's RSS growth per 100 requests and
the ratio Upload/GET. Before the fix of issue 7 an Upload compiled an INSERT of its own: the
cache grew by one entry per Upload up to ~750, and RSS by ~120 KB per Upload.

Then, against real servers in processes of their own (bench/api.py's, ours and the floor that
only reads the body): the peak memory of one Upload of ``--file-mb`` MB above the server's
idle resident set (goal <= 2x the file's size; before issue 13 a 140 MB Upload took 5x), and
Upload of 10 MB in MB/s against the floor in the same run (goal >= 0.8x).
"""

from __future__ import annotations

import argparse
import base64
import gc
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from sqlalchemy import Connection, Engine

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

with warnings.catch_warnings():
    # Starlette's notice that its TestClient will move off httpx: not this bench's concern.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from atoz_watcher.app.wiring import build_api  # noqa: E402
from atoz_watcher.config.sections import ApiKey, ApiSettings, ThumbnailSettings  # noqa: E402
from atoz_watcher.config.settings import Settings  # noqa: E402
from atoz_watcher.db.engine import (  # noqa: E402
    add_default_categories,
    create_missing_tables,
    make_engine,
)
from atoz_watcher.db.rows import blank_document  # noqa: E402
from atoz_watcher.db.shape import TableShape  # noqa: E402
from atoz_watcher.system.logging import configure_logging  # noqa: E402

KEY = ApiKey(developer_key="bench-dev", customer_key="bench-cust")
AUTH = {"Authorization": "ODFHIR bench-dev/bench-cust"}
LISTED_DOCUMENTS = 20
EVERY = 100
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Clinic:
    uploads_to: int  # PatNum the Uploads go to
    listed: int  # PatNum whose LISTED_DOCUMENTS documents the GETs list


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    requests: int
    rss_start: int  # bytes
    rss_end: int

    @property
    def growth_per_100(self) -> float:
        """RSS growth in MB per 100 requests."""
        return (self.rss_end - self.rss_start) / MB * EVERY / self.requests


def rss_bytes() -> int:
    """This process's resident set size (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS in /proc/self/status (Linux only)")


def _patient(conn: Connection, shape: TableShape, lname: str) -> int:
    key = conn.execute(
        shape.table.insert(),
        [shape.complete({"LName": lname, "FName": "Mark", "PatStatus": 0, "ImageFolder": ""})],
    ).inserted_primary_key
    if key is None:
        raise SystemExit("the database returned no PatNum")
    return int(key[0])


def fill(engine: Engine) -> Clinic:
    """Two patients: one receives the Uploads, one has LISTED_DOCUMENTS documents to list."""
    create_missing_tables(engine)
    with engine.begin() as conn:
        add_default_categories(conn)
        patients = TableShape.reflect(conn, "patient")
        clinic = Clinic(
            uploads_to=_patient(conn, patients, "Upload"), listed=_patient(conn, patients, "List")
        )
        documents = TableShape.reflect(conn, "document")
        conn.execute(
            documents.table.insert(),
            [
                documents.complete(
                    blank_document(PatNum=clinic.listed, FileName=f"ListMark{n}.jpg", DocCategory=1)
                )
                for n in range(LISTED_DOCUMENTS)
            ],
        )
    return clinic


def small_png() -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


def compiled_statements(engine: Engine) -> int:
    """How many compiled statements the engine's LRU cache holds (500, pruned at 750)."""
    cache = engine._compiled_cache  # noqa: SLF001 - the cache this bench watches
    return 0 if cache is None else len(cache)


def measure(name: str, call: Callable[[], None], requests: int, engine: Engine) -> Phase:
    """``call`` ``requests`` times; RSS and the compiled cache printed every EVERY calls."""
    gc.collect()
    start = rss_bytes()
    print(f"{name}: RSS {start / MB:.1f} MB at the start")
    for done in range(1, requests + 1):
        call()
        if done % EVERY == 0:
            gc.collect()
            cached = compiled_statements(engine)
            rss = rss_bytes()
            print(
                f"  {name} {done:5d}: RSS {rss / MB:6.1f} MB ({(rss - start) / MB:+5.1f})  "
                f"compiled statements cached: {cached}"
            )
    gc.collect()
    return Phase(name=name, requests=requests, rss_start=start, rss_end=rss_bytes())


def run(base: Path, requests: int, warmup: int) -> tuple[Phase, Phase]:
    root = base / "OpenDentImages"
    root.mkdir()
    url = f"sqlite:///{base / 'atoz-watcher.sqlite3'}"
    engine = make_engine(url)
    try:
        clinic = fill(engine)
        settings = Settings(
            atoz_path=root,
            database_url=url,
            state_dir=base / "state",
            api=ApiSettings(keys=(KEY,)),
            thumbnails=ThumbnailSettings(enabled=False, backfill_days=0),
        )
        body = {"PatNum": clinic.uploads_to, "rawBase64": small_png(), "extension": ".png"}
        with TestClient(build_api(settings, engine), headers=AUTH) as client:

            def get() -> None:
                reply = client.get("/api/v1/documents", params={"PatNum": clinic.listed})
                if reply.status_code != 200:
                    raise SystemExit(f"GET answered {reply.status_code}")

            def upload() -> None:
                reply = client.post("/api/v1/documents/Upload", json=body)
                if reply.status_code != 201:
                    raise SystemExit(f"Upload answered {reply.status_code}")

            for _ in range(warmup):
                get()
                upload()
            gets = measure("GET", get, requests, engine)
            uploads = measure("Upload", upload, requests, engine)
    finally:
        engine.dispose()
    return gets, uploads


def report(gets: Phase, uploads: Phase) -> None:
    print()
    for phase in (gets, uploads):
        total = (phase.rss_end - phase.rss_start) / MB
        print(
            f"{phase.name:6s}: {phase.requests} requests, RSS {phase.rss_start / MB:.1f} -> "
            f"{phase.rss_end / MB:.1f} MB ({total:+.1f}), {phase.growth_per_100:+.2f} MB per 100"
        )
    # A floor of one 4 KB page per 100 requests under the baseline: it can be 0 or negative.
    floor = 4096 / MB
    ratio = uploads.growth_per_100 / max(gets.growth_per_100, floor)
    print(f"ratio Upload/GET growth per 100 requests: {ratio:.1f} (GET floored at 4 KB/100)")


KINDS = ("ours", "floor")


def served_uploads(base: Path, file_mb: int, rounds: int) -> None:
    """One ``file_mb`` MB Upload's peak, then 10 MB Uploads' rate, for ours and the floor."""
    from bench.api import (  # noqa: PLC0415 - only this part serves in processes
        UPLOAD_BYTES,
        Served,
        UploadFigures,
        fill,
        measure_uploads,
        upload_lines,
        upload_peak,
    )

    root, state = base / "served", base / "served-state"
    root.mkdir()
    state.mkdir()
    url = f"sqlite:///{state / 'bench.sqlite3'}"
    pat_num, _ = fill(url, root)
    large = os.urandom(file_mb * MB)
    ten = os.urandom(UPLOAD_BYTES)
    limit = max(len(large), UPLOAD_BYTES)
    served = {kind: Served(kind, root, url, state, b"", max_upload=limit) for kind in KINDS}
    try:
        peaks = {kind: upload_peak(server, pat_num, large) for kind, server in served.items()}
        figures: dict[str, UploadFigures] = measure_uploads(served, pat_num, ten, rounds=rounds)
    finally:
        for server in served.values():
            server.close()
    print()
    for kind, peak in peaks.items():
        print(
            f"{kind:6s}: one Upload of {file_mb} MB peaked {peak:.1f} MB above idle "
            f"({peak / file_mb:.2f}x the file's size; goal <= 2x for ours)"
        )
    print("\n".join(upload_lines(figures["ours"], figures["floor"], UPLOAD_BYTES)))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1500, help="GETs, then as many Uploads")
    parser.add_argument("--warmup", type=int, default=50, help="GETs and Uploads not measured")
    parser.add_argument("--file-mb", type=int, default=100, help="the large Upload, in MB")
    parser.add_argument("--rounds", type=int, default=3, help="10 MB Uploads timed (best of)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(level="warning")
    with tempfile.TemporaryDirectory(prefix="atoz-bench-upload-memory-") as tmp:
        gets, uploads = run(Path(tmp), args.requests, args.warmup)
        report(gets, uploads)
        served_uploads(Path(tmp), args.file_mb, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
