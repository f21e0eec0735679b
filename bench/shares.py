"""Benchmark: watching the A-to-Z folder where inotify cannot: our polling and SMB notifications.

Run from the project root::

    .venv/bin/python bench/shares.py [--small] [--folders N] [--files-per-folder F]

One run makes the tree once, in a temporary directory removed at the end: N patient folders
(default 40,000) in 26 letter folders, F tiny files in each (default 10: 400,000 files), every
file with its document row (SQLite), as a practice's existing documents are. ``--small`` is
2,000 folders, for iterating. It measures:

(a) a polling pass on the idle tree (median of several; the page cache warm, as it is on a
    server that polls every few seconds): ours (``TreePoller.poll``), against
    - the baseline: a bare listing of the root and the letter folders with each patient
      folder's time (``os.scandir``, one ``lstat`` per patient folder). Goal: <= 1.5x.
    - watchdog's ``PollingObserver`` pass: what its emitter does each pass, a
      ``DirectorySnapshot`` of the tree and a ``DirectorySnapshotDiff`` against the last one,
      in a process of its own, whose peak memory is shown too.
(b) the daemon's memory in polling mode (``python -m atoz_watcher run``, VmRSS once its start-up
    rescan is over, and the VmHWM peak). Goal: < 100 MB.
(c) drop -> row for ``--drops`` files (default 200) written one every 25 ms into random patient
    folders, from just after each file's close to its row (the database polled every 10 ms):
    - in polling mode (default settings: poll_interval 5 s; a polled file has no close event,
      so its quiet period is open_settle_seconds, 2 s). Goal: p99 <= poll_interval +
      open_settle_seconds + 1 s.
    - in smb mode against a local Samba server (``smbd`` on 127.0.0.1 serving the same tree),
      the files written through SMB as a Windows workstation writes them (smbprotocol's
      client), open_settle_seconds 0.3 (SMB notifications carry no close either). Goal:
      p99 < 1 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any, Self

from harness import (
    DEV_ONLY,
    SURNAMES,
    DaemonProcess,
    Tree,
    failure,
    insert_patients,
    run_script,
    step,
    verdict,
)

from atoz_watcher.db.engine import add_default_categories, create_missing_tables, make_engine
from atoz_watcher.rules.ignore import DEFAULT_IGNORE, IgnoreRules
from atoz_watcher.rules.layout import folder_name, letter_folder
from atoz_watcher.watch.polling import TreePoller
from tests.support.smbd import Samba, Workstation, why_no_smbd  # harness put the root on sys.path

PASS_GOAL = 1.5  # ours / the bare listing
RSS_GOAL_MB = 100.0
SMB_P99_GOAL_S = 1.0
POLL_INTERVAL_S = 5.0  # the defaults, said again here for the goal
OPEN_SETTLE_S = 2.0
SMB_OPEN_SETTLE_S = 0.3
DROP_EVERY_S = 0.025
ROW_POLL_S = 0.01
STEP_DEADLINE_S = 900.0
Key = tuple[int, str]


# -- the tree -----------------------------------------------------------------------------------


def build_share_tree(base: Path, folders: int, per_folder: int) -> Tree:
    """``folders`` patients with their folders, ``per_folder`` tiny files in each, every file
    with its document row."""
    root = base / "OpenDentImages"
    root.mkdir(parents=True)
    db = base / "state" / "atoz-watcher.sqlite3"
    patients: list[tuple[int, str, str, str]] = []
    made: list[tuple[int, str]] = []
    for index in range(folders):
        pat_num = index + 1
        lname = SURNAMES[index % len(SURNAMES)]
        fname = f"P{index // len(SURNAMES)}"
        name = folder_name(lname, fname, pat_num)
        folder = f"{root}/{letter_folder(name)}/{name}"
        os.makedirs(folder, exist_ok=True)  # noqa: PTH103 - strings keep 40,000 folders fast
        for number in range(per_folder):
            os.close(os.open(f"{folder}/old{number}.jpg", os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        made.append((pat_num, folder))
        patients.append((pat_num, lname, fname, name))
    engine = make_engine(f"sqlite:///{db}")
    try:
        create_missing_tables(engine)
        with engine.begin() as conn:
            add_default_categories(conn)
            insert_patients(conn, patients)
            rows = [
                (p, f"old{n}.jpg", f"old{n}.jpg") for p, *_ in patients for n in range(per_folder)
            ]
            for start in range(0, len(rows), 50_000):
                conn.exec_driver_sql(
                    "INSERT INTO document (PatNum, FileName, Description, DocCategory, "
                    "DateCreated, DateTStamp, Note, Signature, RawBase64, Thumbnail, "
                    "OcrResponseData) VALUES (?, ?, ?, 1, '2024-01-02 03:04:05.000000', "
                    "'2024-01-02 03:04:05.000000', '', '', '', '', '')",
                    rows[start : start + 50_000],
                )
    finally:
        engine.dispose()
    return Tree(root=root, db=db, folders=made, files=folders * per_folder)


# -- (a) a pass ---------------------------------------------------------------------------------


def bare_listing(root: str) -> int:
    """The baseline: the root and the letter folders listed, each patient folder's time read."""
    folders = 0
    with os.scandir(root) as entries:
        letters = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    for letter in letters:
        with os.scandir(letter) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    entry.stat(follow_symlinks=False)
                    folders += 1
    return folders


def median_time(action: Callable[[], object], rounds: int) -> tuple[float, list[float]]:
    """The median of ``rounds`` timings of ``action``, and each of them."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


WATCHDOG_SCRIPT = """
import json, sys, time
from watchdog.utils.dirsnapshot import DirectorySnapshot, DirectorySnapshotDiff
root = sys.argv[1]
start = time.perf_counter()
last = DirectorySnapshot(root)
first_s = time.perf_counter() - start
passes = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    snapshot = DirectorySnapshot(root)
    DirectorySnapshotDiff(last, snapshot)
    last = snapshot
    passes.append(time.perf_counter() - start)
status = dict(
    line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
)
print(json.dumps({
    "first_s": first_s, "passes": passes,
    "rss_kb": int(status["VmRSS"].split()[0]), "peak_kb": int(status["VmHWM"].split()[0]),
}))
"""


def watchdog_pass(root: Path, rounds: int) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", WATCHDOG_SCRIPT, str(root), str(rounds)],
        capture_output=True,
        text=True,
        check=False,
        timeout=STEP_DEADLINE_S,
    )
    if done.returncode != 0:
        raise failure(f"watchdog's pass failed: {done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


# -- (b), (c) the daemon ------------------------------------------------------------------------


class RowWatcher:
    """Polls ``document`` every 10 ms on a thread; notes when each (PatNum, FileName) appears."""

    def __init__(self, db: Path) -> None:
        self._db = db
        self.seen: dict[Key, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rows")

    def __enter__(self) -> Self:
        with closing(sqlite3.connect(self._db)) as conn:
            self._last = int(
                conn.execute("SELECT COALESCE(MAX(DocNum), 0) FROM document").fetchone()[0]
            )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with closing(sqlite3.connect(self._db)) as conn:
            while not self._stop.wait(ROW_POLL_S):
                rows = conn.execute(
                    "SELECT DocNum, PatNum, FileName FROM document WHERE DocNum > ?",
                    (self._last,),
                ).fetchall()
                now = time.perf_counter()
                for doc_num, pat_num, file_name in rows:
                    self.seen.setdefault((int(pat_num), str(file_name)), now)
                    self._last = max(self._last, int(doc_num))

    def wait_for(self, keys: Sequence[Key], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while any(key not in self.seen for key in keys):
            if time.monotonic() > deadline:
                missing = sum(1 for key in keys if key not in self.seen)
                raise failure(f"{missing} of {len(keys)} rows did not appear within {timeout} s")
            time.sleep(0.05)


Writer = Callable[[str, str], None]  # (patient folder path, file name) -> the file written


def drop_and_time(tree: Tree, drops: int, write: Writer, tag: str, timeout: float) -> list[float]:
    """``drops`` files into random folders, one every 25 ms; each one's close -> row."""
    rng = random.Random(drops)
    chosen = rng.sample(tree.folders, min(drops, len(tree.folders)))
    written: dict[Key, float] = {}
    with RowWatcher(tree.db) as rows:
        for number, (pat_num, folder) in enumerate(chosen):
            name = f"{tag}{number}.jpg"
            write(folder, name)
            written[(pat_num, name)] = time.perf_counter()
            time.sleep(DROP_EVERY_S)
        rows.wait_for(list(written), timeout)
        return sorted(rows.seen[key] - at for key, at in written.items())


def write_locally(folder: str, name: str) -> None:
    Path(folder, name).write_bytes(b"dropped")


@contextmanager
def daemon(tree: Tree, log: Path, settings: Mapping[str, str]) -> Iterator[DaemonProcess]:
    """The daemon on the tree with these ATOZ_ settings, once its start-up rescan is over."""
    # Hidden as in a `pip install atoz-watcher` (bench/large_tree.py does the same).
    hide = tuple(name for name in DEV_ONLY if importlib.util.find_spec(name) is not None)
    process = DaemonProcess(tree, log, tag="shares", settings=settings, hide=hide)
    try:
        process.wait_ready(STEP_DEADLINE_S)
        process.wait_event("rescan.finished", STEP_DEADLINE_S)
        process.wait_event("thumbnail.backfill_finished", STEP_DEADLINE_S)
        yield process
    finally:
        process.stop(10)
        process.close()


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def spread(values: Sequence[float]) -> str:
    return (
        f"p50 {statistics.median(values):.2f} s, p99 {percentile(values, 0.99):.2f} s, "
        f"max {max(values):.2f} s"
    )


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f} MB"


# -- the run ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--small", action="store_true", help="2,000 folders, for iterating")
    parser.add_argument("--folders", type=int, default=40_000, help="patient folders")
    parser.add_argument("--files-per-folder", type=int, default=10)
    parser.add_argument("--drops", type=int, default=200, help="files dropped, one per folder")
    parser.add_argument("--rounds", type=int, default=9, help="passes timed (median)")
    args = parser.parse_args(argv)
    if args.small:
        args.folders = 2_000
    if args.folders < args.drops or args.files_per_folder < 0 or args.rounds < 1:
        parser.error("need --folders >= --drops, --files-per-folder >= 0, --rounds >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stdout
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    files = args.folders * args.files_per_folder
    print(
        f"tree: {args.folders} patient folders in 26 letter folders, {args.files_per_folder} "
        f"files each ({files} files, every one with its row); {args.drops} files dropped"
    )
    print(
        f"python {platform.python_version()}, watchdog {version('watchdog')}, smbprotocol "
        f"{version('smbprotocol')}, {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="atoz-shares-") as tmp:
        base = Path(tmp)
        print(f"work dir: {base}")
        with step(out, "build the tree and its database"):
            tree = build_share_tree(base / "tree", args.folders, args.files_per_folder)
        results: dict[str, Any] = {}
        with step(out, f"(a) passes: ours and the bare listing, interleaved, x {args.rounds}"):
            results["passes"] = measure_passes(tree, args.rounds)
        with step(out, "(a) watchdog's PollingObserver pass, in a process of its own"):
            results["watchdog"] = watchdog_pass(tree.root, max(1, min(args.rounds, 2)))
        with step(out, f"(b, c) the daemon in polling mode, {args.drops} files dropped"):
            results["polling"] = polling_run(tree, base, args.drops)
        if problem := why_no_smbd():
            print(f"  (c) smb mode skipped: {problem}")
        else:
            with step(out, f"(c) the daemon in smb mode, {args.drops} files written over SMB"):
                results["smb"] = smb_run(tree, base, args.drops)
        report(args, results)
    return 0


def measure_passes(tree: Tree, rounds: int) -> dict[str, Any]:
    poller = TreePoller(
        str(tree.root),
        lambda _path: None,
        interval=POLL_INTERVAL_S,
        ignore=IgnoreRules(DEFAULT_IGNORE),
        full_every=0,
    )
    start = time.perf_counter()
    poller.poll(report=False)
    first_s = time.perf_counter() - start
    poller.poll()  # the pass that confirms the first listing (lists every folder again)
    counted = bare_listing(str(tree.root))
    if counted != len(tree.folders):
        raise failure(f"the bare listing found {counted} folders, not {len(tree.folders)}")
    # Interleaved, so that a neighbour's load on a shared machine falls on both alike.
    bare_all: list[float] = []
    ours_all: list[float] = []
    for _ in range(rounds):
        bare_all.append(median_time(lambda: bare_listing(str(tree.root)), 1)[0])
        ours_all.append(median_time(poller.poll, 1)[0])
    bare, ours = statistics.median(bare_all), statistics.median(ours_all)
    if poller.last.listed or poller.last.found:
        raise failure(f"an idle pass listed {poller.last.listed} folders")
    return {"bare": bare, "bare_all": bare_all, "ours": ours, "ours_all": ours_all, "full": first_s}


def polling_run(tree: Tree, base: Path, drops: int) -> dict[str, Any]:
    settings = {"ATOZ_WATCHER__MODE": "polling"}
    with daemon(tree, base / "polling.log", settings) as process:
        memory = process.memory_kb()
        mode = process.events("daemon.started")[0]["mode"]
        timeout = 10 * (POLL_INTERVAL_S + OPEN_SETTLE_S) + drops * DROP_EVERY_S
        latencies = drop_and_time(tree, drops, write_locally, "poll", timeout)
        after = process.memory_kb()
    return {"memory": memory, "after": after, "mode": mode, "latencies": latencies}


def smb_run(tree: Tree, base: Path, drops: int) -> dict[str, Any]:
    samba = Samba(base / "samba", tree.root)
    try:
        settings = {
            "ATOZ_WATCHER__MODE": "smb",
            "ATOZ_WATCHER__OPEN_SETTLE_SECONDS": str(SMB_OPEN_SETTLE_S),
            "ATOZ_WATCHER__SMB__SERVER": "127.0.0.1",
            "ATOZ_WATCHER__SMB__PORT": str(samba.port),
            "ATOZ_WATCHER__SMB__SHARE": samba.share,
            "ATOZ_WATCHER__SMB__USERNAME": samba.username,
            "ATOZ_WATCHER__SMB__PASSWORD_FILE": str(samba.password_file),
        }
        with daemon(tree, base / "smb.log", settings) as process:
            memory = process.memory_kb()
            mode = process.events("daemon.started")[0]["mode"]
            rescans = len(process.events("rescan.started"))
            client = Workstation(samba)

            def write(folder: str, name: str) -> None:
                client.write(str(Path(folder, name).relative_to(tree.root)), b"dropped")

            try:
                latencies = drop_and_time(tree, drops, write, "smb", 120.0)
            finally:
                client.close()
            extra = len(process.events("rescan.started")) - rescans
    finally:
        samba.stop()
    return {"memory": memory, "mode": mode, "latencies": latencies, "rescans": extra}


def report(args: argparse.Namespace, results: Mapping[str, Any]) -> None:
    passes, dog = results["passes"], results["watchdog"]
    print(f"\n(a) a polling pass on the idle tree (median of {args.rounds})")
    print(
        f"  baseline, bare listing (root, letters, each patient folder's time): "
        f"{passes['bare']:.3f} s ({', '.join(f'{t:.3f}' for t in passes['bare_all'])})"
    )
    print(
        f"  ours, TreePoller.poll: {passes['ours']:.3f} s "
        f"({', '.join(f'{t:.3f}' for t in passes['ours_all'])}); the first pass, which lists "
        f"every folder: {passes['full']:.3f} s"
    )
    ratio = passes["ours"] / passes["bare"]
    ok = ratio <= PASS_GOAL
    print(f"  ours / bare listing: {ratio:.2f}x   goal <= {PASS_GOAL:g}x   {verdict(ok)}")
    dog_s = statistics.median(dog["passes"])
    print(
        f"  watchdog PollingObserver pass (snapshot + diff): {dog_s:.3f} s "
        f"(first snapshot {dog['first_s']:.3f} s); its process: RSS {mb(dog['rss_kb'])}, "
        f"peak {mb(dog['peak_kb'])}"
    )
    print(f"  watchdog / ours: {dog_s / passes['ours']:.1f}x")

    polling = results["polling"]
    memory = polling["memory"]
    print(f"\n(b) the daemon in {polling['mode']} mode, once its start-up rescan is over")
    print(
        f"  VmRSS {mb(memory['VmRSS'])} (anon {mb(memory['RssAnon'])}, file "
        f"{mb(memory['RssFile'])}); peak {mb(memory['VmHWM'])}; after the drops "
        f"{mb(polling['after']['VmRSS'])}"
    )
    ok = memory["VmRSS"] / 1024 < RSS_GOAL_MB and polling["mode"] == "polling"
    print(f"  goal: VmRSS < {RSS_GOAL_MB:g} MB   {verdict(ok)}")

    goal = POLL_INTERVAL_S + OPEN_SETTLE_S + 1
    latencies = polling["latencies"]
    print(f"\n(c) drop -> row, {len(latencies)} files into random folders, one every 25 ms")
    print(
        f"  polling (poll_interval {POLL_INTERVAL_S:g} s, open_settle_seconds "
        f"{OPEN_SETTLE_S:g} s): {spread(latencies)}"
    )
    p99 = percentile(latencies, 0.99)
    print(f"  goal: p99 <= {goal:g} s   {verdict(p99 <= goal)}")
    smb = results.get("smb")
    if smb is None:
        print("  smb: not run (no smbd)")
        return
    latencies = smb["latencies"]
    print(
        f"  smb ({smb['mode']} mode, local Samba, open_settle_seconds {SMB_OPEN_SETTLE_S:g} s, "
        f"daemon VmRSS {mb(smb['memory']['VmRSS'])}): {spread(latencies)}; rescans "
        f"meanwhile: {smb['rescans']}"
    )
    p99 = percentile(latencies, 0.99)
    ok = p99 < SMB_P99_GOAL_S and smb["mode"] == "smb"
    print(f"  goal: p99 < {SMB_P99_GOAL_S:g} s   {verdict(ok)}")


if __name__ == "__main__":
    sys.exit(run_script(main, "bench/shares.py"))
