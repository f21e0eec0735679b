"""Benchmark: `atoz-watcher run`, as a real process, on a tree of 40,000 patient folders.

Run from the project root::

    .venv/bin/python bench/large_tree.py [--folders N] [--drops D] [--idle-window S]

Everything lives in a temporary directory that is removed at the end. The same run measures:

(a) startup: from the spawn to READY=1 on $NOTIFY_SOCKET (a datagram socket bound here), and
    to the end of the catch-up scan ("rescan.finished" in the JSON log on stderr). Goal: ready
    in under 10 s. Baseline: a bare recursive ``os.scandir`` walk of the same tree (median of
    3), so startup is also shown as a multiple of the time it takes just to list the tree.
(b) memory: VmRSS (and the VmHWM peak) from /proc/PID/status once the catch-up scan is over.
    Goal: under 80 MB. Baseline: the same daemon on an empty tree, so the per-folder cost shows.
(c) idle CPU: utime + stime from /proc/PID/stat over a window in which nothing happens.
    Goal: ~0 (under 0.05 CPU seconds per second).
(d) a file dropped into each of D folders (the last made, the last in Z, and random ones) is
    registered, with no rescan other than the one at startup (a rescan for an inotify queue
    overflow would mean events were lost). Then SIGTERM: exit code 0 within 10 s.

The tree: 26 letter folders; N patients with ImageFolder set and their folders; in two folders
out of three, one or two files that already have their document row. A tree this size needs
more inotify watches than some distributions allow (fs.inotify.max_user_watches): the bench
raises the limit for the run when it can, and puts it back.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO, TypeVar

import sqlalchemy

from atoz_watcher.db.engine import add_default_categories, create_missing_tables, make_engine
from atoz_watcher.layout import folder_name, letter_folder

READY_GOAL_S = 10.0
RSS_GOAL_MB = 80.0
IDLE_GOAL = 0.05  # CPU seconds per second
REGISTER_DEADLINE_S = 30.0
STOP_GOAL_S = 10.0
STEP_DEADLINE_S = 120.0  # for steps without a goal: only a hung daemon reaches it
WALK_ROUNDS = 3

T = TypeVar("T")

WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")
WATCH_MARGIN = 8192  # watches other processes of this user may hold

# One surname per letter: the patients fill the 26 letter folders, made A to Z in that order.
SURNAMES = (
    "Adams", "Baker", "Clark", "Davis", "Evans", "Foster", "Garcia", "Harris", "Ito", "Jones",
    "King", "Lopez", "Miller", "Nguyen", "OBrien", "Patel", "Quinn", "Reyes", "Smith", "Turner",
    "Underwood", "Vargas", "Walker", "Xu", "Young", "Zimmerman",
)  # fmt: skip
GIVEN = ("Ann", "Ben", "Chloé", "Dev", "Eve", "Finn", "Grace", "Hugo", "Ivy", "Jean")


# -- the tree ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tree:
    root: Path
    db: Path
    folders: list[tuple[int, str]]  # (PatNum, patient folder path), in the order made
    files: int  # already there, each with its document row


def build_tree(base: Path, count: int) -> Tree:
    """``count`` patients and their folders; 0, 1 or 2 registered files in each folder."""
    root = base / "OpenDentImages"
    root.mkdir(parents=True)
    db = base / "state" / "atoz-watcher.sqlite3"
    patients: list[tuple[int, str, str, str]] = []
    documents: list[tuple[int, str, str]] = []
    folders: list[tuple[int, str]] = []
    letters: set[str] = set()
    for index in range(count):
        pat_num = index + 1
        lname = SURNAMES[index % len(SURNAMES)]
        fname = GIVEN[(index // len(SURNAMES)) % len(GIVEN)]
        name = folder_name(lname, fname, pat_num)
        letter = f"{root}/{letter_folder(name)}"
        if letter not in letters:
            os.mkdir(letter)  # noqa: PTH102 - strings and os calls keep 40,000 folders fast
            letters.add(letter)
        folder = f"{letter}/{name}"
        os.mkdir(folder)  # noqa: PTH102
        folders.append((pat_num, folder))
        patients.append((pat_num, lname, fname, name))
        for number in range(index % 3):
            file_name = f"old{number}.jpg"
            descriptor = os.open(f"{folder}/{file_name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            os.write(descriptor, b"old")
            os.close(descriptor)
            documents.append((pat_num, file_name, file_name))
    engine = make_engine(f"sqlite:///{db}")
    try:
        create_missing_tables(engine)
        with engine.begin() as conn:
            add_default_categories(conn)
            if not patients:  # the empty tree of the baseline run
                return Tree(root=root, db=db, folders=folders, files=0)
            conn.exec_driver_sql(
                "INSERT INTO patient (PatNum, LName, FName, PatStatus, ImageFolder) "
                "VALUES (?, ?, ?, 0, ?)",
                patients,
            )
            conn.exec_driver_sql(
                "INSERT INTO document (PatNum, FileName, Description, DocCategory, "
                "DateCreated, Note, Signature, RawBase64, Thumbnail, OcrResponseData) "
                "VALUES (?, ?, ?, 1, '2024-01-02 03:04:05.000000', '', '', '', '', '')",
                documents,
            )
    finally:
        engine.dispose()
    return Tree(root=root, db=db, folders=folders, files=len(documents))


def bare_walk(root: Path) -> int:
    """root -> letter -> patient folder -> entries, ``os.scandir`` only; returns the folders."""
    folders = 0
    with os.scandir(root) as letters:
        for letter in letters:
            if not letter.is_dir(follow_symlinks=False):
                continue
            with os.scandir(letter.path) as patients:
                for patient in patients:
                    if patient.is_dir(follow_symlinks=False):
                        with os.scandir(patient.path) as entries:
                            for _ in entries:
                                pass
                        folders += 1
    return folders


# -- the daemon process -------------------------------------------------------------------------


class DaemonProcess:
    """``python -m atoz_watcher run`` with its log in a file and $NOTIFY_SOCKET bound here."""

    def __init__(self, tree: Tree, log_path: Path) -> None:
        self.log_path = log_path
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"atoz-bench-{uuid.uuid4().hex}"
        self._notify.bind("\0" + name)  # the abstract namespace: no socket file
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ATOZ_", "NOTIFY_SOCKET", "WATCHDOG_"))
        }
        env.update(
            ATOZ_PATH=str(tree.root),
            ATOZ_DATABASE_URL=f"sqlite:///{tree.db}",
            ATOZ_STATE_DIR=str(tree.db.parent),
            ATOZ_METRICS__ENABLED="false",
            NOTIFY_SOCKET="@" + name,
        )
        self._log = log_path.open("wb")
        self.spawned = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atoz_watcher", "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def wait_ready(self, timeout: float) -> float:
        """Seconds from the spawn to READY=1."""
        deadline = self.spawned + timeout
        while (left := deadline - time.perf_counter()) > 0:
            self._notify.settimeout(min(left, 0.5))
            try:
                message = self._notify.recv(4096).decode()
            except TimeoutError:
                if self.proc.poll() is not None:
                    message = f"the daemon exited with {self.proc.returncode}:\n{self.tail()}"
                    raise failure(message) from None
                continue
            if "READY=1" in message.splitlines():
                return time.perf_counter() - self.spawned
        raise failure(f"no READY=1 within {timeout} s:\n{self.tail()}")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log events called ``name`` written so far (whole lines only)."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        found = []
        for line in text.splitlines(keepends=True):
            if line.endswith("\n") and line.startswith("{") and f'"{name}"' in line:
                event: dict[str, Any] = json.loads(line)
                if event.get("event") == name:
                    found.append(event)
        return found

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        found = poll(lambda: next(iter(self.events(name)), None), timeout)
        if found is None:
            raise failure(f"no {name} in the log within {timeout} s:\n{self.tail()}")
        return found

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def memory_kb(self) -> dict[str, int]:
        """VmRSS, VmHWM, RssAnon and RssFile from /proc/PID/status, in kB."""
        keys = ("VmRSS", "VmHWM", "RssAnon", "RssFile")
        figures = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in keys:
                figures[key] = int(value.split()[0])
        return figures

    def cpu_seconds(self) -> float:
        """utime + stime from /proc/PID/stat (fields 14 and 15; split after the command name,
        which may hold spaces)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float) -> tuple[int | None, float]:
        """SIGTERM; the exit code (None if still running at ``timeout``) and seconds taken."""
        start = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.perf_counter() - start

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._notify.close()
        self._log.close()


@dataclass
class Run:
    ready_s: float = 0.0
    caught_up_s: float = 0.0  # spawn -> rescan.finished
    mode: str = ""
    catch_up: dict[str, Any] = field(default_factory=dict)
    memory_kb: dict[str, int] = field(default_factory=dict)
    idle_cpu: float = 0.0
    idle_window_s: float = 0.0
    dropped: int = 0
    missing: int = 0
    register_s: float = 0.0
    rescans: list[str] = field(default_factory=list)
    exit_code: int | None = None
    stop_s: float = 0.0


def run_daemon(tree: Tree, log_path: Path, *, drops: int, idle_window_s: float) -> Run:
    run = Run()
    daemon = DaemonProcess(tree, log_path)
    try:
        run.ready_s = daemon.wait_ready(STEP_DEADLINE_S)
        run.mode = daemon.wait_event("daemon.started", STEP_DEADLINE_S)["mode"]
        run.catch_up = daemon.wait_event("rescan.finished", STEP_DEADLINE_S)
        run.caught_up_s = time.perf_counter() - daemon.spawned
        run.memory_kb = daemon.memory_kb()

        if idle_window_s > 0:
            cpu, clock = daemon.cpu_seconds(), time.perf_counter()
            time.sleep(idle_window_s)  # the measurement window: nothing happens in it
            run.idle_window_s = time.perf_counter() - clock
            run.idle_cpu = (daemon.cpu_seconds() - cpu) / run.idle_window_s

        if drops and tree.folders:
            expected = drop_files(tree, drops)
            run.dropped = len(expected)
            dropped = time.perf_counter()
            found = poll(
                lambda: True if expected <= registered(tree.db) else None, REGISTER_DEADLINE_S
            )
            run.register_s = time.perf_counter() - dropped
            run.missing = 0 if found else len(expected - registered(tree.db))
        run.rescans = [event["reason"] for event in daemon.events("rescan.started")]
        run.exit_code, run.stop_s = daemon.stop(STOP_GOAL_S)
    finally:
        daemon.close()
    return run


def drop_files(tree: Tree, count: int) -> set[tuple[int, str]]:
    """One file into each of ``count`` folders: the last made, the last in the last letter
    folder, and the rest at random."""
    last_letter = Path(tree.folders[-1][1]).parent.parent / "Z"
    in_last = [f for f in tree.folders if Path(f[1]).parent == last_letter] or tree.folders
    rng = random.Random(len(tree.folders))
    chosen = [tree.folders[-1], in_last[-1]]
    chosen += rng.sample(tree.folders, max(0, min(count, len(tree.folders)) - len(chosen)))
    expected = set()
    for number, (pat_num, folder) in enumerate(chosen[:count]):
        (Path(folder) / f"drop{number}.jpg").write_bytes(b"dropped")
        expected.add((pat_num, f"drop{number}.jpg"))
    return expected


def registered(db: Path) -> set[tuple[int, str]]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT PatNum, FileName FROM document WHERE FileName LIKE 'drop%'")
        return {(int(pat_num), name) for pat_num, name in rows}


def poll(probe: Callable[[], T | None], timeout: float) -> T | None:
    """Call ``probe`` every 50 ms until it returns something; None at the deadline."""
    deadline = time.monotonic() + timeout
    while (found := probe()) is None:
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    return found


# -- inotify watches ----------------------------------------------------------------------------


@contextmanager
def enough_watches(needed: int, out: TextIO) -> Iterator[None]:
    """Raise fs.inotify.max_user_watches for the run when it is below ``needed``; restore."""
    before = int(WATCHES.read_text())
    if before >= needed:
        yield
        return
    try:
        WATCHES.write_text(str(needed))
    except OSError as exc:
        raise failure(
            f"the tree needs about {needed} inotify watches, {WATCHES} allows {before}, and "
            f"it cannot be raised here ({exc.strerror}): run as root, or lower --folders"
        ) from None
    print(f"  raised {WATCHES} from {before} to {needed} for the run", file=out)
    try:
        yield
    finally:
        WATCHES.write_text(str(before))


# -- reporting ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def failure(message: str) -> SystemExit:
    return SystemExit(f"bench/large_tree.py: {message}")


@contextmanager
def step(out: TextIO, what: str) -> Iterator[None]:
    out.write(f"  {what} ...")
    out.flush()
    start = time.perf_counter()
    yield
    out.write(f" {time.perf_counter() - start:.1f} s\n")
    out.flush()


def mb(kb: int) -> str:
    return f"{kb / 1024:6.1f} MB"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--folders", type=int, default=40_000, help="patient folders")
    parser.add_argument("--drops", type=int, default=20, help="files dropped, one per folder")
    parser.add_argument("--idle-window", type=float, default=5.0, help="seconds of idle CPU")
    args = parser.parse_args(argv)
    if args.folders < 1 or args.drops < 0 or args.idle_window <= 0:
        parser.error("--folders must be at least 1, --drops at least 0, --idle-window above 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stdout
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"tree: {args.folders} patient folders in 26 letter folders, 0-2 registered files "
        f"each; {args.drops} files dropped; idle window {args.idle_window:g} s"
    )
    print(
        f"python {platform.python_version()}, watchdog {version('watchdog')}, "
        f"sqlalchemy {sqlalchemy.__version__}, sqlite {sqlite3.sqlite_version}, "
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs; "
        f"max_user_watches {WATCHES.read_text().strip()}"
    )
    print(
        "daemon: `python -m atoz_watcher run` (mode auto, default settings, metrics off), "
        "log at info level, JSON, to a file"
    )

    with tempfile.TemporaryDirectory(prefix="atoz-bench-") as tmp:
        base = Path(tmp)
        print(f"work dir: {base}")
        print("setup:")
        with step(out, f"build the tree ({args.folders} folders) and its database"):
            tree = build_tree(base / "large", args.folders)
        with step(out, f"{tree.files} registered files; bare os.scandir walk x {WALK_ROUNDS}"):
            walks = []
            for _ in range(WALK_ROUNDS):
                start = time.perf_counter()
                walked = bare_walk(tree.root)
                walks.append(time.perf_counter() - start)
            if walked != args.folders:
                raise failure(f"the walk found {walked} folders, not {args.folders}")
        walk_s = statistics.median(walks)
        empty = build_tree(base / "empty", 0)
        print("runs:")
        with step(out, "the daemon on an empty tree (baseline)"):
            small = run_daemon(empty, base / "empty.log", drops=0, idle_window_s=1.0)
        with (
            enough_watches(1 + 26 + args.folders + WATCH_MARGIN, out),
            step(out, f"the daemon on {args.folders} folders"),
        ):
            large = run_daemon(
                tree, base / "large.log", drops=args.drops, idle_window_s=args.idle_window
            )
        report(args, large, small, walk_s, walks)
    return 0


def report(
    args: argparse.Namespace, large: Run, small: Run, walk_s: float, walks: list[float]
) -> None:
    folders = args.folders
    print(f"\n(a) startup on {folders} folders (mode {large.mode})")
    print(f"  spawn -> READY=1:                {large.ready_s:7.2f} s")
    print(f"  spawn -> catch-up scan finished: {large.caught_up_s:7.2f} s")
    print(
        f"  catch-up scan: {large.catch_up.get('folders')} folders, "
        f"{large.catch_up.get('files')} files, {large.catch_up.get('registered')} registered, "
        f"{large.catch_up.get('unmatched')} unmatched"
    )
    print(f"  baseline, empty tree: READY in {small.ready_s:.2f} s")
    print(
        f"  baseline, bare os.scandir walk: {walk_s:.3f} s "
        f"(median of {', '.join(f'{w:.3f}' for w in walks)})"
    )
    print(
        f"  READY / walk: {large.ready_s / walk_s:.1f}x; "
        f"READY, minus the empty tree's, / walk: {(large.ready_s - small.ready_s) / walk_s:.1f}x"
    )
    ok = large.ready_s < READY_GOAL_S and large.mode == "native"
    print(f"  goal: READY < {READY_GOAL_S:g} s in native mode   {verdict(ok)}")

    memory, empty = large.memory_kb, small.memory_kb
    per_folder = (memory["VmRSS"] - empty["VmRSS"]) * 1024 / folders
    print("\n(b) memory once caught up (VmRSS; RssAnon + RssFile; VmHWM peak)")
    print(
        f"  {folders} folders: {mb(memory['VmRSS'])}  (anon {mb(memory['RssAnon'])}, "
        f"file {mb(memory['RssFile'])}; peak {mb(memory['VmHWM'])})"
    )
    print(
        f"  empty tree:    {mb(empty['VmRSS'])}  (anon {mb(empty['RssAnon'])}, "
        f"file {mb(empty['RssFile'])}; peak {mb(empty['VmHWM'])})"
    )
    print(f"  per folder above the empty tree: {per_folder:.0f} bytes")
    ok = memory["VmRSS"] / 1024 < RSS_GOAL_MB
    print(f"  goal: VmRSS < {RSS_GOAL_MB:g} MB   {verdict(ok)}")

    print(f"\n(c) idle CPU over {large.idle_window_s:.1f} s with nothing happening")
    print(f"  {folders} folders: {large.idle_cpu:.4f} CPU s/s")
    print(f"  empty tree:    {small.idle_cpu:.4f} CPU s/s (over {small.idle_window_s:.1f} s)")
    print(f"  (resolution: 1/{os.sysconf('SC_CLK_TCK')} s of CPU over the window)")
    print(f"  goal: < {IDLE_GOAL} CPU s/s   {verdict(large.idle_cpu < IDLE_GOAL)}")

    print(f"\n(d) {large.dropped} files dropped into {large.dropped} folders, then SIGTERM")
    done = large.dropped - large.missing
    print(f"  registered: {done}/{large.dropped}, the last {large.register_s:.2f} s after the drop")
    print(f"  rescans: {large.rescans} (only 'startup' means no event was lost)")
    ok = large.missing == 0 and large.rescans == ["startup"]
    print(f"  goal: every dropped file registered, no rescan   {verdict(ok)}")
    print(
        f"  SIGTERM -> exit code {large.exit_code} in {large.stop_s:.2f} s "
        f"(empty tree: exit code {small.exit_code} in {small.stop_s:.2f} s)"
    )
    ok = large.exit_code == 0 and large.stop_s < STOP_GOAL_S
    print(f"  goal: exit code 0 within {STOP_GOAL_S:g} s   {verdict(ok)}")


if __name__ == "__main__":
    sys.exit(main())
