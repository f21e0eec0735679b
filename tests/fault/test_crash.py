"""Crash consistency: `atoz-watcher run` killed with SIGKILL at random moments, then audited.

One world per database. The daemon runs as a real process; each of its lives sees a burst of
files (prefixed and not, many patient folders, some written slowly in chunks through one open
descriptor, some written to a hidden temporary name and renamed into place, some whose stripped
name clashes with a file already there or with another file of the burst) and is killed with
SIGKILL after a random delay: during start-up, while files are being written, while they settle,
while batches are registered. The files keep arriving while it is down; the next life picks
them up. After the last kill one more life runs to the end, and the audit checks every file:
exactly one row, the right category, the right (prefix-stripped, x-prefixed on a clash) name,
in its own folder, its content whole; no prefixed file left, no row without a file.

The seed is printed; ``ATOZ_FAULT_SEED=<n>`` replays a run. ``--long`` / ``ATOZ_FAULT_LONG=1``:
250 kill points per database instead of 25.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.processes import DaemonLife
from tests.support.worlds import IMAGE_CATEGORY, World

pytestmark = pytest.mark.process  # the daemon as a process, killed

KILLS_CI = 25  # per database; three (SQLite, MariaDB InnoDB, MariaDB MyISAM): 75 kill points
KILLS_LONG = 250
PATIENTS = 12
PREFIX = re.compile(r"^_\d*_")
FINISH_S = 90.0


# -- the files --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spec:
    """One dropped file and what must become of it."""

    token: str  # unique, the first line of its content: finds the file wherever it went
    pat_num: int
    folder: Path
    name: str  # as dropped
    stripped: str  # the name it must end up under, give or take x's in front
    category: int
    clashes: bool  # the stripped name is already taken on disk and in the rows
    chunks: int = 1
    via_temp: bool = False
    size: int = 3000

    @property
    def content(self) -> bytes:
        head = f"{self.token}\n".encode()
        return head + b"z" * (self.size - len(head))


@dataclass
class Clinic:
    world: World
    patients: list[tuple[int, Path]]
    default: int  # the first visible image category
    prefixes: list[tuple[str, int]]  # (prefix, expected category)
    existing: set[tuple[int, str]] = field(default_factory=set)  # pre-registered files
    dropped: set[tuple[Path, str]] = field(default_factory=set)  # (folder, name) ever written
    specs: list[Spec] = field(default_factory=list)


def make_clinic(world: World) -> Clinic:
    misc = world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    photos = world.add_category("Photos", order=2)
    hidden = world.add_category("Old scans", order=3, hidden=True)
    other_kind = world.add_category("Not images", order=0, category=IMAGE_CATEGORY - 1)
    patients = []
    for i in range(PATIENTS):
        name = f"Crash{chr(65 + i)}P{i}x"
        pat_num = world.add_patient(f"Crash{chr(65 + i)}", f"P{i}", name)
        patients.append((pat_num, world.folder(name)))
    clinic = Clinic(
        world,
        patients,
        misc,
        prefixes=[
            (f"_{xrays}_", xrays),
            (f"_{photos}_", photos),
            (f"_{hidden}_", hidden),  # hidden categories count
            (f"_{misc}_", misc),
            ("__", misc),  # number 0
            ("_987654_", misc),  # unknown DefNum
            (f"_{other_kind}_", misc),  # a definition of another kind
            ("", misc),  # no prefix
        ],
    )
    for pat_num, folder in patients:  # one file per folder that a dropped name will clash with
        (folder / "clash.jpg").write_bytes(b"old")
        world.add_document(pat_num, "clash.jpg", misc)
        clinic.existing.add((pat_num, "clash.jpg"))
    return clinic


def plan_burst(clinic: Clinic, rng: random.Random, life: int) -> list[Spec]:
    count = rng.randint(8, 16)
    specs = []
    for i in range(count):
        pat_num, folder = rng.choice(clinic.patients)
        prefix, category = rng.choice(clinic.prefixes)
        token = f"L{life}N{i}"
        base = f"p{token}.jpg"
        clashes = False
        roll = rng.random()
        if prefix and roll < 0.1:
            base, clashes = "clash.jpg", True
        elif prefix and roll < 0.25:
            base = f"dup{life}.jpg"  # other files of this burst may want the same name
        if not prefix:
            base = f"u{token}.jpg"
        if (folder, prefix + base) in clinic.dropped:
            # A scanner never writes over a file it dropped: a name is used once per folder.
            base, clashes = f"p{token}.jpg", False
        clinic.dropped.add((folder, prefix + base))
        slow = rng.random() < 0.2
        specs.append(
            Spec(
                token=token,
                pat_num=pat_num,
                folder=folder,
                name=prefix + base,
                stripped=base,
                category=category,
                clashes=clashes,
                chunks=rng.randint(3, 4) if slow else 1,
                via_temp=not slow and rng.random() < 0.15,
                size=rng.choice((3000, 40_000, 200_000)),
            )
        )
    return specs


def write_burst(specs: list[Spec], rng: random.Random) -> None:
    """What a scanner does: files one after the other, some in chunks through one open
    descriptor (a pause between chunks), some to a hidden name and renamed into place."""
    pauses = [rng.uniform(0.0, 0.02) for _ in specs]
    chunk_pauses = [rng.uniform(0.04, 0.1) for _ in specs]
    for spec, pause, chunk_pause in zip(specs, pauses, chunk_pauses, strict=True):
        data = spec.content
        target = spec.folder / spec.name
        if spec.via_temp:
            temp = spec.folder / f".tmp-{spec.token}"
            temp.write_bytes(data)
            temp.rename(target)
        elif spec.chunks > 1:
            step = -(-len(data) // spec.chunks)
            with target.open("xb") as out:
                for start in range(0, len(data), step):
                    out.write(data[start : start + step])
                    out.flush()
                    if start + step < len(data):
                        time.sleep(chunk_pause)
        else:
            target.write_bytes(data)
        time.sleep(pause)


def burst_seconds(specs: list[Spec]) -> float:
    return sum(0.01 + (s.chunks - 1) * 0.07 for s in specs)


# -- the audit --------------------------------------------------------------------------------


@dataclass
class Audit:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    misplaced: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.misplaced)

    def counts(self) -> str:
        return (
            f"lost={len(self.lost)} duplicated={len(self.duplicated)} "
            f"misplaced={len(self.misplaced)}"
        )


def disk_files(root: Path) -> dict[Path, bytes]:
    """Every file under the root but the Thumbnails folders, with its content."""
    found = {}
    for path in root.rglob("*"):
        if "Thumbnails" in path.relative_to(root).parts or not path.is_file():
            continue
        found[path] = path.read_bytes()
    return found


@dataclass
class Found:
    """What the audit found: files by token, rows by (PatNum, FileName)."""

    files: dict[Path, bytes]
    by_token: dict[str, list[Path]]
    row_count: Counter[tuple[int, str]]
    row_category: dict[tuple[int, str], int]


def right_name(spec: Spec, name: str) -> bool:
    """Unprefixed: unchanged. Prefixed: stripped, with x's in front (at least one when the
    stripped name was taken before the burst)."""
    if not PREFIX.match(spec.name):
        return name == spec.name
    xs = len(name) - len(spec.stripped)
    return name == "x" * max(xs, 0) + spec.stripped and (xs >= 1 or not spec.clashes)


def audit_spec(spec: Spec, found: Found, result: Audit) -> tuple[int, str] | None:
    """Check one dropped file; its (PatNum, FileName) when it has a file."""
    what = f"{spec.name} ({spec.token})"
    paths = found.by_token.get(spec.token, [])
    if not paths:
        result.lost.append(f"{what}: no file")
        return None
    if len(paths) > 1:
        result.duplicated.append(f"{what}: files {paths}")
    path = paths[0]
    key = (spec.pat_num, path.name)
    if path.parent != spec.folder:
        result.misplaced.append(f"{what}: moved to {path}")
    if found.files[path] != spec.content:
        result.misplaced.append(f"{what}: content damaged at {path}")
    if not right_name(spec, path.name):
        result.misplaced.append(f"{what}: named {path.name}")
    if found.row_count[key] == 0:
        result.lost.append(f"{what}: no row for {path.name}")
    elif found.row_category[key] != spec.category:
        result.misplaced.append(f"{what}: category {found.row_category[key]}, not {spec.category}")
    return key


def audit(clinic: Clinic, specs: list[Spec]) -> Audit:
    result = Audit()
    root = clinic.world.root
    files = disk_files(root)
    by_token: dict[str, list[Path]] = {}
    for path, data in files.items():
        by_token.setdefault(data.split(b"\n", 1)[0].decode(errors="replace"), []).append(path)
    rows = clinic.world.documents()
    found = Found(
        files,
        by_token,
        Counter((r["PatNum"], r["FileName"]) for r in rows),
        {(r["PatNum"], r["FileName"]): r["DocCategory"] for r in rows},
    )
    result.duplicated += [f"{n} rows for {k}" for k, n in found.row_count.items() if n > 1]
    expected_keys = set(clinic.existing)
    expected_keys |= {k for spec in specs if (k := audit_spec(spec, found, result)) is not None}
    pat_of_folder = {folder: pat_num for pat_num, folder in clinic.patients}
    for path in files:
        if (pat_of_folder.get(path.parent), path.name) not in expected_keys:
            result.misplaced.append(f"unexpected file {path.relative_to(root)}")
        if PREFIX.match(path.name) or path.name.startswith(".tmp-"):
            result.misplaced.append(f"left with its prefix: {path.relative_to(root)}")
    result.duplicated += [
        f"row without its file: {k}" for k in found.row_count if k not in expected_keys
    ]
    journal = clinic.world.state / "journal"
    if journal.is_dir() and list(journal.glob("*.json")):
        result.misplaced.append(f"journal not empty: {sorted(journal.glob('*.json'))}")
    return result


def registered_count(world: World) -> int:
    return len(world.documents())


# -- the test ---------------------------------------------------------------------------------


@dataclass
class Lives:
    """The kill loop's record."""

    specs: list[Spec] = field(default_factory=list)
    phases: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)


def one_life(clinic: Clinic, rng: random.Random, number: int, log: Path, lives: Lives) -> None:
    """Start the daemon, drop a burst, SIGKILL it at a random moment. Each life starts with
    what the last one left (files waiting, a journal entry) and gets a burst of its own."""
    born = time.monotonic()
    life = DaemonLife(clinic.world, log)
    try:
        burst = plan_burst(clinic, rng, number)
        lives.specs.extend(burst)
        if rng.random() >= 0.3:  # else the burst starts before READY: during start-up
            life.wait_ready()
        writer = threading.Thread(target=write_burst, args=(burst, random.Random(rng.random())))
        delay = rng.uniform(0.0, burst_seconds(burst) + 0.8)
        writer.start()
        try:
            time.sleep(delay)  # the experiment: a random moment
            if not life.ready():
                phase = "start-up"
            elif writer.is_alive():
                phase = "writing"
            else:
                phase = "settling-or-registering"
            life.kill()
        finally:
            writer.join()  # the rest of the burst arrives while the daemon is down
        lives.phases[phase] += 1
        lives.seconds.append(time.monotonic() - born)
    finally:
        life.close()


def last_life(clinic: Clinic, expected_rows: int, log: Path) -> tuple[float, str, int]:
    """The life that runs to the end: seconds until all is done (FINISH_S: it never was),
    the log's tail, the exit code of SIGTERM."""
    world = clinic.world
    journal = world.state / "journal"

    def finished() -> bool:
        return (
            registered_count(world) >= expected_rows
            and not any(PREFIX.match(p.name) for p in world.root.glob("*/*/*"))
            and not (journal.is_dir() and any(journal.glob("*.json")))
        )

    life = DaemonLife(world, log)
    try:
        life.wait_ready()
        start = time.monotonic()
        while not finished() and time.monotonic() - start < FINISH_S and life.proc.poll() is None:
            time.sleep(0.05)
        took = time.monotonic() - start if finished() else FINISH_S
        time.sleep(0.5)  # a straggling double registration (if any) shows up before the audit
        tail = life.tail()
        return took, tail, life.terminate()
    finally:
        life.close()


def test_sigkill_at_random_moments_loses_nothing(
    world: World, fault_seed: int, fault_long: bool
) -> None:
    """On SQLite, MariaDB (InnoDB tables) and Open Dental's own MyISAM schema."""
    rng = random.Random(fault_seed)
    clinic = make_clinic(world)
    kills = KILLS_LONG if fault_long else KILLS_CI
    log = world.state.parent / "daemon.log"
    world.state.mkdir(parents=True, exist_ok=True)
    lives = Lives()
    for number in range(1, kills + 1):
        one_life(clinic, rng, number, log, lives)
    took, tail, code = last_life(clinic, len(clinic.existing) + len(lives.specs), log)
    result = audit(clinic, lives.specs)
    if took >= FINISH_S:
        result.lost.append(f"not finished within {FINISH_S} s; the log ends:\n{tail}")
    assert code == 0, tail
    replays = log.read_text(encoding="utf-8", errors="replace").count('"journal.replayed"')
    print(  # noqa: T201 - the seed and the figures are the point
        f"crash[{world.kind}] seed={fault_seed} kills={kills} files={len(lives.specs)} "
        f"phases={dict(lives.phases)} life={sum(lives.seconds) / kills:.2f}s "
        f"final-catch-up={took:.1f}s journal-replays={replays} {result.counts()}"
    )
    assert result.clean, (
        f"seed {fault_seed} (rerun: ATOZ_FAULT_SEED={fault_seed}): {result.counts()}\n"
        + "\n".join(result.lost + result.duplicated + result.misplaced)
    )
