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
import importlib.util
import os
import platform
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import sqlalchemy
from harness import (
    DEV_ONLY,
    WATCH_MARGIN,
    WATCHES,
    Run,
    Tree,
    WatchLimitError,
    build_tree,
    enough_watches,
    failure,
    run_daemon,
    run_script,
    step,
    verdict,
)

READY_GOAL_S = 10.0
RSS_GOAL_MB = 80.0
IDLE_GOAL = 0.05  # CPU seconds per second
REGISTER_DEADLINE_S = 30.0
STOP_GOAL_S = 10.0
STEP_DEADLINE_S = 120.0  # for steps without a goal: only a hung daemon reaches it
WALK_ROUNDS = 3


# -- the tree ---------------------------------------------------------------------------------


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


# -- the daemon ---------------------------------------------------------------------------------


def measure(
    tree: Tree, log_path: Path, *, drops: int, idle_window_s: float, hide: Sequence[str]
) -> Run:
    return run_daemon(
        tree,
        log_path,
        drops=drops,
        idle_window_s=idle_window_s,
        step_deadline_s=STEP_DEADLINE_S,
        register_deadline_s=REGISTER_DEADLINE_S,
        stop_timeout_s=STOP_GOAL_S,
        hide=hide,
    )


# -- reporting ----------------------------------------------------------------------------------


def mb(kb: int) -> str:
    return f"{kb / 1024:6.1f} MB"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--folders", type=int, default=40_000, help="patient folders")
    parser.add_argument("--drops", type=int, default=20, help="files dropped, one per folder")
    parser.add_argument("--idle-window", type=float, default=5.0, help="seconds of idle CPU")
    parser.add_argument(
        "--with-dev-packages",
        action="store_true",
        help=f"let the daemon import {', '.join(DEV_ONLY)} (installed for the tests only)",
    )
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
    present = [name for name in DEV_ONLY if importlib.util.find_spec(name) is not None]
    hide: tuple[str, ...] = () if args.with_dev_packages else tuple(present)
    if hide:
        print(
            f"hidden from the daemon, as in a `pip install atoz-watcher`: {', '.join(hide)} "
            "(installed here for the tests; structlog would import it: about 4 MB; "
            "--with-dev-packages measures with it)"
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
            small = measure(empty, base / "empty.log", drops=0, idle_window_s=1.0, hide=hide)
        try:
            with (
                enough_watches(1 + 26 + args.folders + WATCH_MARGIN, out),
                step(out, f"the daemon on {args.folders} folders"),
            ):
                large = measure(
                    tree,
                    base / "large.log",
                    drops=args.drops,
                    idle_window_s=args.idle_window,
                    hide=hide,
                )
        except WatchLimitError as exc:
            raise failure(f"{exc}: run as root, or lower --folders") from None
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

    dropped = len(large.expected)
    print(f"\n(d) {dropped} files dropped into {dropped} folders, then SIGTERM")
    done = dropped - len(large.missing)
    print(f"  registered: {done}/{dropped}, the last {large.register_s:.2f} s after the drop")
    print(f"  rescans: {large.rescans} (only 'startup' means no event was lost)")
    ok = not large.missing and large.rescans == ["startup"]
    print(f"  goal: every dropped file registered, no rescan   {verdict(ok)}")
    print(
        f"  SIGTERM -> exit code {large.exit_code} in {large.stop_s:.2f} s "
        f"(empty tree: exit code {small.exit_code} in {small.stop_s:.2f} s)"
    )
    ok = large.exit_code == 0 and large.stop_s < STOP_GOAL_S
    print(f"  goal: exit code 0 within {STOP_GOAL_S:g} s   {verdict(ok)}")


if __name__ == "__main__":
    sys.exit(run_script(main, "bench/large_tree.py"))
