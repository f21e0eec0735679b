"""Benchmark: the daemon's latency, from a file's close to its committed row, and its burst
throughput against the registrar called directly.

Run from the project root::

    .venv/bin/python bench/latency.py [--files 1000] [--burst 2000] [--folders 100]

Everything lives in a temporary directory that is removed at the end. The daemon is the real
``Daemon`` (native inotify, default watcher settings but for a rescan interval of a day) run on
a thread of this process, as tests/app/test_daemon.py runs it. The files are written by another
Python process, as a scanner writes them (a writer on a thread of this process would wait for
the daemon's threads at every system call), which reports the time after each close on the
same clock (CLOCK_MONOTONIC). A side thread polls the database every 10 ms for new DocNums and
notes when each (PatNum, FileName) first appears: the commit time, give or take one poll. The
same run measures:

(a) latency: ``--files`` files written one at a time, one every ``--interval-ms``, across the
    patient folders, half of them with a ``_<DefNum>_`` prefix (renamed on import). For each,
    the time from just after its close to its row. Goal: p99 under 1 s.
(b) burst throughput: ``--burst`` files written into the folders as fast as possible, timed
    from the first write to the moment the last of their rows exists. Two baselines, in the
    same run, each on an identical set of files in a tree and database of its own (in the same
    state as the daemon's: the files of (a) registered beforehand, untimed), timed from the
    first call to the last return:
    - "one file a call": ``Registrar.register([file])`` for each file, in a loop. This is the
      issue's baseline ("the registrar called directly in a loop on the same files"), and the
      one the goal is judged on: daemon files/s over direct files/s above 0.7.
    - "batches of 500": ``Registrar.register`` on 500 candidates at a time, the batch size the
      daemon and the rescans use. Stricter (a loop that has every file in hand at once and
      none of the daemon's waiting), printed for information.
    The daemon's time includes its quiet period after the last close
    (``watcher.settle_seconds``); the output shows the time from the last close to the last row.

Log lines at warning level and above go, as JSON, to a file in the temporary directory.
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
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Self, TextIO

import sqlalchemy
from harness import failure, insert_patients, run_script, step, verdict
from sqlalchemy import Engine

from atoz_watcher.app.daemon import Daemon
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.sections import WatcherSettings
from atoz_watcher.config.settings import Settings
from atoz_watcher.db import queries
from atoz_watcher.db.engine import add_default_categories, create_missing_tables, make_engine
from atoz_watcher.ingest.registrar import Candidate, Registered, Registrar
from atoz_watcher.rules.layout import folder_name, patient_dir
from atoz_watcher.system.journal import Journal
from atoz_watcher.system.logging import configure_logging
from atoz_watcher.system.metrics import Metrics
from atoz_watcher.system.sdnotify import Notifier

P99_GOAL_S = 1.0
RATIO_GOAL = 0.7  # daemon / direct files per second, above
POLL_S = 0.010  # the side thread's database poll
DIRECT_BATCH = 500  # the stricter baseline; and how the files of (a) are registered untimed
RESCAN_INTERVAL_S = 86_400.0  # no periodic rescan during the run
DEADLINE_S = 60.0  # for rows to appear; only a stuck daemon reaches it
PAYLOAD = b"\xff\xd8 latency bench \xff\xd9" * 8

LAST_NAMES = ("Adams", "Baker", "Clark", "Davis", "Evans", "Foster", "García", "Harris")
FIRST_NAMES = ("Ann", "Ben", "Chloé", "Dev", "Eve")

Key = tuple[int, str]  # (PatNum, final FileName)


@dataclass(frozen=True, slots=True)
class FileSpec:
    pat_num: int
    folder: str  # the patient folder's name
    name: str  # as written
    final: str  # the FileName of its row

    @property
    def key(self) -> Key:
        return (self.pat_num, self.final)


@dataclass(frozen=True, slots=True)
class Patient:
    pat_num: int
    lname: str
    fname: str
    folder: str


# -- the world ----------------------------------------------------------------------------------


def make_patients(count: int) -> list[Patient]:
    patients = []
    for index in range(count):
        pat_num = index + 1
        lname = LAST_NAMES[index % len(LAST_NAMES)]
        fname = FIRST_NAMES[(index // len(LAST_NAMES)) % len(FIRST_NAMES)]
        patients.append(Patient(pat_num, lname, fname, folder_name(lname, fname, pat_num)))
    return patients


def make_world(base: Path, patients: Sequence[Patient]) -> tuple[Path, Engine]:
    """An A-to-Z root with every patient's folder, and a database with our schema, the
    default categories and the patients (ImageFolder set). Returns the root and the engine."""
    root = base / "OpenDentImages"
    for patient in patients:
        patient_dir(root, patient.folder).mkdir(parents=True)
    engine = make_engine(f"sqlite:///{base / 'state' / 'atoz-watcher.sqlite3'}")
    create_missing_tables(engine)
    with engine.begin() as conn:
        add_default_categories(conn)
        insert_patients(conn, [(p.pat_num, p.lname, p.fname, p.folder) for p in patients])
    return root, engine


def make_files(
    prefix: str, count: int, patients: Sequence[Patient], def_num: int
) -> list[FileSpec]:
    """``count`` files spread over the patients' folders; every other one with a prefix."""
    files = []
    for index in range(count):
        patient = patients[index % len(patients)]
        final = f"{prefix}{index:05d}.jpg"
        name = f"_{def_num}_{final}" if index % 2 else final
        files.append(FileSpec(patient.pat_num, patient.folder, name, final))
    return files


# -- watching the database ----------------------------------------------------------------------


class RowWatcher:
    """Polls ``document`` every 10 ms from a thread of its own; notes when each (PatNum,
    FileName) first appears."""

    def __init__(self, db: Path) -> None:
        self._db = db
        self.seen: dict[Key, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-row-watcher")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last = 0
        with closing(sqlite3.connect(self._db)) as conn:
            while not self._stop.wait(POLL_S):
                rows = conn.execute(
                    "SELECT DocNum, PatNum, FileName FROM document WHERE DocNum > ? "
                    "ORDER BY DocNum",
                    (last,),
                ).fetchall()
                now = time.perf_counter()
                for doc_num, pat_num, file_name in rows:
                    self.seen.setdefault((int(pat_num), file_name), now)
                    last = max(last, int(doc_num))

    def wait_for(self, keys: Sequence[Key], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while any(key not in self.seen for key in keys):
            if time.monotonic() > deadline:
                missing = sum(1 for key in keys if key not in self.seen)
                raise failure(f"{missing} of {len(keys)} rows did not appear within {timeout} s")
            time.sleep(0.05)


# -- the daemon ---------------------------------------------------------------------------------


@contextmanager
def running_daemon(settings: Settings, engine: Engine) -> Iterator[tuple[Daemon, Metrics]]:
    """The real Daemon on a thread; yields once its catch-up scan is done; stops it after."""
    components = Components.from_settings(settings, engine)
    metrics = components.metrics
    daemon = Daemon(components, notifier=Notifier(None))
    thread = threading.Thread(target=daemon.run, name="bench-daemon")
    thread.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not metrics.registry.get_sample_value("atoz_last_successful_scan_timestamp_seconds"):
            if not thread.is_alive() or time.monotonic() > deadline:
                raise failure("the daemon did not finish its catch-up scan")
            time.sleep(0.01)
        yield daemon, metrics
    finally:
        daemon.handle_exit()
        thread.join(15)
        if thread.is_alive():
            raise failure("the daemon did not stop within 15 s")


# -- writing ------------------------------------------------------------------------------------


# Writes the files named on stdin, one every argv[2] seconds (0: as fast as it can). Prints
# perf_counter() before the first write, then once after each close: CLOCK_MONOTONIC, the same
# clock in every process.
WRITER = """
import sys, time
paths = sys.stdin.read().splitlines()
payload, interval = bytes.fromhex(sys.argv[1]), float(sys.argv[2])
closes = []
start = time.perf_counter()
for index, path in enumerate(paths):
    with open(path, "xb") as handle:
        handle.write(payload)
    closes.append(time.perf_counter())
    pause = start + (index + 1) * interval - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
print(start, *closes, sep="\\n")
"""


def write_elsewhere(
    root: Path, files: Sequence[FileSpec], interval_s: float = 0.0
) -> tuple[float, list[float]]:
    """Write the files from another process, as a scanner would (a writer on a thread of this
    one would wait for the daemon's threads at every system call: one interpreter lock).
    Returns the writer's clock before its first write, and after each close."""
    paths = "\n".join(str(patient_dir(root, spec.folder) / spec.name) for spec in files)
    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", WRITER, PAYLOAD.hex(), str(interval_s)],
        input=paths,
        capture_output=True,
        text=True,
        check=True,
    )
    start, *closes = (float(line) for line in done.stdout.split())
    return start, closes


# -- measurements -------------------------------------------------------------------------------


def measure_latency(
    root: Path, watcher: RowWatcher, files: Sequence[FileSpec], interval_s: float
) -> list[float]:
    """The files written one at a time at a steady pace; seconds from each close to its row."""
    _, closes = write_elsewhere(root, files, interval_s)
    keys = [spec.key for spec in files]
    watcher.wait_for(keys, DEADLINE_S)
    return [watcher.seen[key] - closed for key, closed in zip(keys, closes, strict=True)]


@dataclass(frozen=True, slots=True)
class Burst:
    write_s: float  # first write to last close
    total_s: float  # first write to last row


def measure_burst(root: Path, watcher: RowWatcher, files: Sequence[FileSpec]) -> Burst:
    start, closes = write_elsewhere(root, files)
    keys = [spec.key for spec in files]
    watcher.wait_for(keys, DEADLINE_S)
    return Burst(closes[-1] - start, max(watcher.seen[key] for key in keys) - start)


def register_directly(
    root: Path, engine: Engine, journal: Path, files: Sequence[FileSpec], *, batch: int
) -> int:
    """``Registrar.register`` in a loop, ``batch`` candidates a call (1: one call per file);
    returns how many were registered."""
    registrar = Registrar(engine, Journal(journal))
    candidates = [
        Candidate(spec.pat_num, patient_dir(root, spec.folder), spec.name) for spec in files
    ]
    registered = 0
    for start in range(0, len(candidates), batch):
        results = registrar.register(candidates[start : start + batch])
        registered += sum(1 for result in results if isinstance(result, Registered))
    return registered


@dataclass(frozen=True, slots=True)
class Direct:
    """One baseline: the burst's files registered by the registrar called directly."""

    label: str
    batch: int  # candidates per call
    seconds: float  # first call -> last return
    quiet_write_s: float  # writing the files into its tree, no daemon running


def measure_direct(
    base: Path,
    patients: Sequence[Patient],
    paced: Sequence[FileSpec],
    burst: Sequence[FileSpec],
    *,
    label: str,
    batch: int,
    out: TextIO,
) -> tuple[Direct, set[tuple[int, str, int]]]:
    """A world of its own in the daemon's state (the files of (a) registered, untimed), the
    burst written into it, then timed: the registrar on the burst, ``batch`` files a call.
    Returns the figures and the rows it made."""
    name = f"direct-{batch}"
    with step(out, f"(b) {label}: a tree and database like the daemon's"):
        root, engine = make_world(base / name, patients)
    try:
        journal = base / name / "journal"
        with step(out, f"(b) {label}: the {len(paced)} earlier files, registered untimed"):
            write_elsewhere(root, paced)
            register_directly(root, engine, journal, paced, batch=DIRECT_BATCH)
        with step(out, f"(b) {label}: {len(burst)} files written (no daemon running)"):
            start, closes = write_elsewhere(root, burst)
        with step(out, f"(b) {label}: Registrar.register, {batch} file(s) a call"):
            began = time.perf_counter()
            done = register_directly(root, engine, journal, burst, batch=batch)
            seconds = time.perf_counter() - began
        if done != len(burst):
            raise failure(f"{label}: the registrar registered {done} of {len(burst)} files")
        return Direct(label, batch, seconds, closes[-1] - start), rows(engine)
    finally:
        engine.dispose()


def rows(engine: Engine) -> set[tuple[int, str, int]]:
    with engine.connect() as conn:
        result = conn.exec_driver_sql("SELECT PatNum, FileName, DocCategory FROM document")
        return {(int(p), f, int(c)) for p, f, c in result}


# -- reporting ----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=1000, help="files for the latency run")
    parser.add_argument("--burst", type=int, default=2000, help="files in the burst")
    parser.add_argument("--folders", type=int, default=100, help="patient folders")
    parser.add_argument(
        "--interval-ms", type=float, default=15.0, help="pause between latency files"
    )
    args = parser.parse_args(argv)
    if min(args.files, args.burst, args.folders) < 1 or args.interval_ms < 0:
        parser.error("--files, --burst and --folders must be at least 1, --interval-ms >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stdout
    watcher_settings = WatcherSettings(mode="native", rescan_interval=RESCAN_INTERVAL_S)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"latency: {args.files} files, one every {args.interval_ms:g} ms; burst: {args.burst} "
        f"files; {args.folders} patient folders; half the files with a _<DefNum>_ prefix"
    )
    print(
        f"python {platform.python_version()}, watchdog {version('watchdog')}, "
        f"sqlalchemy {sqlalchemy.__version__}, sqlite {sqlite3.sqlite_version}, "
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs"
    )
    print(
        f"daemon: Daemon on a thread of this process, mode {watcher_settings.mode}, "
        f"settle_seconds {watcher_settings.settle_seconds:g} (after a close), "
        f"open_settle_seconds {watcher_settings.open_settle_seconds:g} (no close seen), "
        f"rescan_interval {watcher_settings.rescan_interval:g} s; SQLite (WAL)"
    )
    with tempfile.TemporaryDirectory(prefix="atoz-bench-") as tmp:
        base = Path(tmp)
        print(f"work dir: {base}")
        with (base / "log.jsonl").open("w", encoding="utf-8") as log_stream:
            configure_logging(level="warning", stream=log_stream)
            return run(args, base, watcher_settings, out)


def run(
    args: argparse.Namespace, base: Path, watcher_settings: WatcherSettings, out: TextIO
) -> int:
    patients = make_patients(args.folders)
    print("setup:")
    with step(out, f"the daemon's tree of {args.folders} patient folders and its database"):
        root, engine = make_world(base / "daemon", patients)
    try:
        with engine.connect() as conn:
            xrays = next(c.def_num for c in queries.image_categories(conn) if c.name == "X-Rays")
        paced = make_files("lat", args.files, patients, xrays)
        burst = make_files("burst", args.burst, patients, xrays)
        settings = Settings(
            atoz_path=root,
            database_url=f"sqlite:///{base / 'daemon' / 'state' / 'atoz-watcher.sqlite3'}",
            state_dir=base / "daemon" / "state",
            watcher=watcher_settings,
        )
        print("runs:")
        with (
            running_daemon(settings, engine) as (daemon, metrics),
            RowWatcher(base / "daemon" / "state" / "atoz-watcher.sqlite3") as watcher,
        ):
            if daemon.mode != "native":
                raise failure(f"the daemon runs in {daemon.mode} mode, not native")
            with step(out, f"(a) {args.files} files, one every {args.interval_ms:g} ms"):
                latencies = measure_latency(root, watcher, paced, args.interval_ms / 1000)
            own = daemon_latency(metrics)
            with step(out, f"(b) daemon: a burst of {args.burst} files"):
                timing = measure_burst(root, watcher, burst)

        ours = rows(engine)
    finally:
        engine.dispose()
    if len(ours) != args.files + args.burst:
        raise failure(f"the daemon's table holds {len(ours)} rows")
    each, each_rows = measure_direct(
        base, patients, paced, burst, label="direct, one file a call", batch=1, out=out
    )
    batched, batched_rows = measure_direct(
        base,
        patients,
        paced,
        burst,
        label=f"direct, batches of {DIRECT_BATCH}",
        batch=DIRECT_BATCH,
        out=out,
    )
    same = ours == each_rows == batched_rows

    report_latency(latencies, own)
    report_burst(timing, each, batched, args.burst, watcher_settings, same=same)
    return 0


def daemon_latency(metrics: Metrics) -> tuple[float, float]:
    """The daemon's own view: its latency histogram's count and mean (first event to row)."""
    count = metrics.registry.get_sample_value("atoz_registration_latency_seconds_count") or 0.0
    total = metrics.registry.get_sample_value("atoz_registration_latency_seconds_sum") or 0.0
    return count, total / count if count else 0.0


def report_latency(latencies: Sequence[float], own: tuple[float, float]) -> None:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    p50, p95, p99 = cuts[49], cuts[94], cuts[98]
    print(f"\n(a) latency, close -> committed row, over {len(latencies)} files")
    print(f"  p50 {ms(p50)}   p95 {ms(p95)}   p99 {ms(p99)}   max {ms(max(latencies))}")
    print(f"  min {ms(min(latencies))}   mean {ms(statistics.fmean(latencies))}")
    print(
        f"  (the row is seen by a {POLL_S * 1000:g} ms poll: up to ~{POLL_S * 1000:g} ms of each "
        "figure is the poll's; the settle period after a close is part of every figure)"
    )
    count, mean = own
    print(
        f"  the daemon's own histogram (first event -> row): {count:.0f} files, mean {ms(mean)}"
        f" (the files of (a))"
    )
    print(f"  goal: p99 < {P99_GOAL_S:g} s with native events   {verdict(p99 < P99_GOAL_S)}")


def report_burst(
    timing: Burst,
    each: Direct,
    batched: Direct,
    count: int,
    watcher: WatcherSettings,
    *,
    same: bool,
) -> None:
    daemon_rate = count / timing.total_s
    settle = watcher.settle_seconds
    print(f"\n(b) burst of {count} files")
    print(f"  daemon: first write -> last row  {timing.total_s:7.3f} s {daemon_rate:8.0f} files/s")
    print(
        f"    writing (another process) took {timing.write_s:.3f} s "
        f"({each.quiet_write_s:.3f} s and {batched.quiet_write_s:.3f} s into the baselines' "
        "trees, no daemon running)"
    )
    print(
        f"    last close -> last row           {timing.total_s - timing.write_s:7.3f} s, of "
        f"which one quiet period, settle_seconds = {settle:g} s"
    )
    print("  the registrar called directly in a loop, on the same files already written:")
    for direct in (each, batched):
        calls = -(-count // direct.batch)
        print(
            f"    {direct.label + ':':26s} Registrar.register x{calls:<5d} "
            f"{direct.seconds:7.3f} s {count / direct.seconds:8.0f} files/s"
        )
    print(f"  same rows in all three databases (PatNum, FileName, DocCategory): {same}")
    ratio = daemon_rate / (count / each.seconds)
    strict = daemon_rate / (count / batched.seconds)
    # A daemon that cost nothing would still need the writing time and one quiet period.
    bound = batched.seconds / (batched.quiet_write_s + settle)
    print(
        f"  ratio daemon/direct, batches of {batched.batch}: {strict:.2f}   "
        f"(stricter, for information; a daemon that cost nothing would still need the writing "
        f"time and one quiet period: at most {bound:.2f})"
    )
    ok = ratio > RATIO_GOAL and same
    print(
        f"  ratio daemon/direct, one file a call: {ratio:.2f}   goal > {RATIO_GOAL} (judged on "
        f"this one, the issue's baseline: the registrar called directly in a loop)   "
        f"{verdict(ok)}"
    )


if __name__ == "__main__":
    sys.exit(run_script(main, "bench/latency.py"))
