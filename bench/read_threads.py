"""Benchmark: GET /documents p50/p99 with ``[api] read_threads`` at several values, and the floor.

Run from the project root::

    .venv/bin/python bench/read_threads.py [--threads 40,4,2] [--rounds 4] [--requests 500]
                                           [--clients 20] [--no-mariadb]

On SQLite, then on MariaDB (a database of its own, dropped after), it serves ours once for each
``--threads`` value (40 is anyio's own thread count: every read at once, as before the read
lane) and the floor of ``bench/api.py``, all at the same time, each in a process of its own, and
measures them in turns (``--rounds`` rounds of ``--requests`` GETs each at ``--clients``
concurrent clients, the order reversed every other round), so that a change of the machine's
load falls on every one. It prints each one's p50 and p99 over all its rounds and its p99 as a
ratio of the floor's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import httpx
from api import (
    AUTH,
    Served,
    fill,
    gather_latencies,
    in_turns,
    mariadb_database,
    percentiles,
)

from atoz_watcher.system.logging import configure_logging


def run_database(url: str, base: Path, args: argparse.Namespace) -> list[str]:
    root, state = base / "OpenDentImages", base / "state"
    root.mkdir()
    state.mkdir()
    pat_num, _ = fill(url, root)
    kinds = [f"ours:{n}" for n in args.threads] + ["floor"]
    served: dict[str, Served] = {}
    try:
        for kind in kinds[:-1]:
            served[kind] = Served(kind, root, url, state, b"")
        with httpx.Client(base_url=served[kinds[0]].url, headers=AUTH) as api:
            body = api.get("/api/v1/documents", params={"PatNum": pat_num}).content
        served["floor"] = Served("floor", root, url, state, body)
        timings = in_turns(
            args.rounds,
            lambda kind, _turn: asyncio.run(
                gather_latencies(
                    served[kind].url, pat_num, requests=args.requests, clients=args.clients
                )
            ),
            kinds,
        )
    finally:
        for server in served.values():
            server.close()
    database = "SQLite" if url.startswith("sqlite") else "MariaDB"
    _, floor_p99 = percentiles(timings["floor"])
    lines = [f"{database}: {args.rounds} rounds of {args.requests} GETs, {args.clients} clients"]
    for kind in kinds:
        p50, p99 = percentiles(timings[kind])
        name = "floor" if kind == "floor" else f"{kind.partition(':')[2]} threads"
        ratio = p99 / floor_p99
        lines.append(
            f"  {name:11s} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   p99 {ratio:5.2f}x the floor"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--threads", type=lambda v: [int(n) for n in v.split(",")], default=[40, 4, 2]
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--mariadb", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--no-mariadb", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    configure_logging(level="warning")
    with tempfile.TemporaryDirectory(prefix="atoz-bench-threads-") as tmp:
        sqlite_base = Path(tmp) / "sqlite"
        sqlite_base.mkdir()
        url = f"sqlite:///{sqlite_base / 'state' / 'bench.sqlite3'}"
        print("\n".join(run_database(url, sqlite_base, args)), flush=True)
        if not args.no_mariadb:
            maria_base = Path(tmp) / "mariadb"
            maria_base.mkdir()
            with mariadb_database(args.mariadb) as maria_url:
                print("\n".join(run_database(maria_url, maria_base, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
