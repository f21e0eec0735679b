"""What the benches and tests/ingest/test_large_tree.py share: the large tree, the daemon as a real
process, the inotify watch limit, and reading its JSON log.

The benches import it through bench/harness.py (which adds their reporting helpers). It does not
import pytest: a step that fails raises ``BenchFailure`` (and a watch limit that cannot be
raised, ``WatchLimitError``), which a bench turns into its exit message (``run_script``) and the
test into pytest.fail or pytest.skip.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from sqlalchemy import Connection

from atoz_watcher.db.engine import add_default_categories, create_missing_tables, make_engine
from atoz_watcher.rules.layout import folder_name, letter_folder

T = TypeVar("T")

WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")
# The root, the 26 letter folders and every patient folder take a watch; leave room for the
# watches other processes of this user (other tests, an editor) may hold.
WATCH_MARGIN = 8192

# One surname per letter: the patients fill the 26 letter folders, made A to Z in that order.
SURNAMES = (
    "Adams", "Baker", "Clark", "Davis", "Evans", "Foster", "Garcia", "Harris", "Ito", "Jones",
    "King", "Lopez", "Miller", "Nguyen", "OBrien", "Patel", "Quinn", "Reyes", "Smith", "Turner",
    "Underwood", "Vargas", "Walker", "Xu", "Young", "Zimmerman",
)  # fmt: skip
GIVEN = ("Ann", "Ben", "Chloé", "Dev", "Eve", "Finn", "Grace", "Hugo", "Ivy", "Jean")


class BenchFailure(Exception):  # noqa: N818 - reads as what it is: the bench failed
    """A step could not be done: the daemon exited, or something did not happen in time."""


class WatchLimitError(BenchFailure):
    """The tree needs more inotify watches than allowed, and the limit cannot be raised."""


# -- the tree ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tree:
    root: Path
    db: Path
    folders: list[tuple[int, str]]  # (PatNum, patient folder path), in the order made
    files: int  # already there, each with its document row


def insert_patients(conn: Connection, patients: Sequence[tuple[int, str, str, str]]) -> None:
    """(PatNum, LName, FName, ImageFolder) rows, PatStatus 0 (a patient)."""
    conn.exec_driver_sql(
        "INSERT INTO patient (PatNum, LName, FName, PatStatus, ImageFolder) VALUES (?, ?, ?, 0, ?)",
        list(patients),
    )


def build_tree(base: Path, count: int) -> Tree:
    """``count`` patients with ImageFolder set and their folders; in two folders out of three,
    one or two files that already have their document row."""
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
            if not patients:  # an empty tree, for a baseline
                return Tree(root=root, db=db, folders=folders, files=0)
            insert_patients(conn, patients)
            conn.exec_driver_sql(
                # Registered long ago, as a practice's existing documents are (DateTStamp too:
                # the daemon's start-up thumbnail pass looks at recent changes only).
                "INSERT INTO document (PatNum, FileName, Description, DocCategory, "
                "DateCreated, DateTStamp, Note, Signature, RawBase64, Thumbnail, OcrResponseData) "
                "VALUES (?, ?, ?, 1, '2024-01-02 03:04:05.000000', '2024-01-02 03:04:05.000000', "
                "'', '', '', '', '')",
                documents,
            )
    finally:
        engine.dispose()
    return Tree(root=root, db=db, folders=folders, files=len(documents))


def drop_files(tree: Tree, count: int) -> set[tuple[int, str]]:
    """One file into each of ``count`` folders: the last made, the last in the last letter
    folder (Z), and the rest at random."""
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
    """The (PatNum, FileName) pairs of the dropped files that have a document row."""
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


# -- the daemon process -------------------------------------------------------------------------


class DaemonProcess:
    """``python -m atoz_watcher run`` with its log in a file and $NOTIFY_SOCKET bound here."""

    def __init__(
        self,
        tree: Tree,
        log_path: Path,
        *,
        tag: str = "bench",
        hide: Sequence[str] = (),
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.log_path = log_path
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"atoz-{tag}-{uuid.uuid4().hex}"
        self._notify.bind("\0" + name)  # the abstract namespace: no socket file, no length limit
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
        env.update(settings or {})  # more ATOZ_ settings (e.g. the watcher's mode)
        self._log = log_path.open("wb")
        self.spawned = time.perf_counter()
        self.proc = subprocess.Popen(
            daemon_command(hide),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def wait_ready(self, timeout: float) -> float:
        """Seconds from the spawn to READY=1 on the notify socket."""
        deadline = self.spawned + timeout
        while (left := deadline - time.perf_counter()) > 0:
            self._notify.settimeout(min(left, 0.5))
            try:
                message = self._notify.recv(4096).decode()
            except TimeoutError:
                if self.proc.poll() is not None:
                    message = f"the daemon exited with {self.proc.returncode}:\n{self.tail()}"
                    raise BenchFailure(message) from None
                continue
            if "READY=1" in message.splitlines():
                return time.perf_counter() - self.spawned
        raise BenchFailure(f"no READY=1 within {timeout} s:\n{self.tail()}")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log events called ``name`` written so far."""
        return log_events(self.log_path, name)

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        """The first JSON log event called ``name``, once it is written."""
        found = poll(lambda: next(iter(self.events(name)), None), timeout)
        if found is None:
            raise BenchFailure(f"no {name} in the log within {timeout} s:\n{self.tail()}")
        return found

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def memory_kb(self) -> dict[str, int]:
        """VmRSS (now), VmHWM (peak), RssAnon and RssFile from /proc/PID/status, in kB."""
        keys = ("VmRSS", "VmHWM", "RssAnon", "RssFile")
        figures = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in keys:
                figures[key] = int(value.split()[0])
        return figures

    def cpu_seconds(self) -> float:
        """utime + stime from /proc/PID/stat (fields 14 and 15; split after the command name,
        which may hold spaces: utime and stime are then the 12th and 13th fields)."""
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
    """What one daemon run on a tree measured."""

    ready_s: float = 0.0
    caught_up_s: float = 0.0  # spawn -> rescan.finished
    started: dict[str, Any] = field(default_factory=dict)  # the daemon.started event
    catch_up: dict[str, Any] = field(default_factory=dict)  # the rescan.finished event
    memory_kb: dict[str, int] = field(default_factory=dict)
    idle_cpu: float = 0.0
    idle_window_s: float = 0.0
    expected: set[tuple[int, str]] = field(default_factory=set)  # the files dropped
    missing: set[tuple[int, str]] = field(default_factory=set)  # of those, not registered
    register_s: float = 0.0  # from the last drop to the last of their rows
    rescans: list[str] = field(default_factory=list)  # the reason of each rescan started
    files: int = 0  # in the tree before the daemon started
    exit_code: int | None = None
    stop_s: float = 0.0
    log_tail: str = field(default="", repr=False)

    @property
    def mode(self) -> str:
        return str(self.started.get("mode", ""))

    @property
    def rss_kb(self) -> int:
        return self.memory_kb.get("VmRSS", 0)

    @property
    def peak_kb(self) -> int:
        return self.memory_kb.get("VmHWM", 0)

    def figures(self) -> str:
        return (
            f"ready {self.ready_s:.2f} s, RSS {self.rss_kb / 1024:.1f} MB "
            f"(peak {self.peak_kb / 1024:.1f} MB), idle CPU {self.idle_cpu:.4f} s/s, "
            f"{len(self.expected) - len(self.missing)}/{len(self.expected)} dropped files "
            f"registered in {self.register_s:.2f} s, rescans {self.rescans}"
        )


def log_events(path: Path, name: str | None = None) -> list[dict[str, Any]]:
    """The JSON log events in the file at ``path`` (those called ``name``, if given), from whole
    lines only: a line still being written, or one that is not JSON, is left out."""
    text = path.read_text(encoding="utf-8", errors="replace")
    found = []
    for line in text.splitlines(keepends=True):
        if not (line.endswith("\n") and line.startswith("{")):
            continue
        if name is not None and f'"{name}"' not in line:
            continue  # most lines: no JSON parsed
        try:
            event: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            continue
        if name is None or event.get("event") == name:
            found.append(event)
    return found


# Installed here only for the tests (schemathesis needs rich), not by `pip install atoz-watcher`;
# structlog imports rich when it can, which costs the daemon about 4 MB.
DEV_ONLY = ("rich",)


def daemon_command(hide: Sequence[str] = ()) -> list[str]:
    """``python -m atoz_watcher run``; with ``hide``, those packages cannot be imported by the
    daemon, as in an installation without them (``sys.modules[name] = None`` makes an import
    of that name fail, the way a missing package does)."""
    if not hide:
        return [sys.executable, "-m", "atoz_watcher", "run"]
    script = (
        f"import sys; sys.modules.update(dict.fromkeys({tuple(hide)!r})); "
        "from atoz_watcher.app.cli import main; raise SystemExit(main(['run']))"
    )
    return [sys.executable, "-c", script]


def run_daemon(
    tree: Tree,
    log_path: Path,
    *,
    drops: int,
    idle_window_s: float,
    step_deadline_s: float,
    register_deadline_s: float,
    stop_timeout_s: float,
    tag: str = "bench",
    hide: Sequence[str] = (),
) -> Run:
    """Start the daemon on the tree; once caught up, measure memory and idle CPU (over
    ``idle_window_s``, if above 0), drop ``drops`` files and wait for their rows, then SIGTERM.
    ``step_deadline_s`` bounds the steps without a goal: only a hung daemon reaches it."""
    run = Run(files=tree.files)
    daemon = DaemonProcess(tree, log_path, tag=tag, hide=hide)
    try:
        run.ready_s = daemon.wait_ready(step_deadline_s)
        run.started = daemon.wait_event("daemon.started", step_deadline_s)
        run.catch_up = daemon.wait_event("rescan.finished", step_deadline_s)
        # Caught up means the thumbnails too: at start the daemon builds those missing.
        daemon.wait_event("thumbnail.backfill_finished", step_deadline_s)
        run.caught_up_s = time.perf_counter() - daemon.spawned
        run.memory_kb = daemon.memory_kb()

        if idle_window_s > 0:
            cpu, clock = daemon.cpu_seconds(), time.perf_counter()
            time.sleep(idle_window_s)  # the measurement window: nothing happens in it
            run.idle_window_s = time.perf_counter() - clock
            run.idle_cpu = (daemon.cpu_seconds() - cpu) / run.idle_window_s

        if drops and tree.folders:
            run.expected = expected = drop_files(tree, drops)
            dropped = time.perf_counter()
            found = poll(
                lambda: True if expected <= registered(tree.db) else None, register_deadline_s
            )
            run.register_s = time.perf_counter() - dropped
            run.missing = set() if found else expected - registered(tree.db)
        run.rescans = [event["reason"] for event in daemon.events("rescan.started")]
        run.exit_code, run.stop_s = daemon.stop(stop_timeout_s)
    finally:
        daemon.close()
        run.log_tail = daemon.tail()
    return run


# -- inotify watches ----------------------------------------------------------------------------


@contextmanager
def enough_watches(needed: int, out: TextIO | None = None) -> Iterator[None]:
    """Raise fs.inotify.max_user_watches while the block runs when it is below ``needed``
    (saying so on ``out``, if given); restore it. ``WatchLimitError`` where it cannot be."""
    try:
        before = int(WATCHES.read_text())
    except (OSError, ValueError) as exc:
        raise WatchLimitError(f"cannot read {WATCHES}: {exc}") from None
    if before >= needed:
        yield
        return
    try:
        WATCHES.write_text(str(needed))
    except OSError as exc:
        raise WatchLimitError(
            f"the tree needs about {needed} inotify watches, {WATCHES} allows {before}, and "
            f"it cannot be raised here ({exc.strerror})"
        ) from None
    if out is not None:
        print(f"  raised {WATCHES} from {before} to {needed} for the run", file=out)
    try:
        yield
    finally:
        WATCHES.write_text(str(before))
