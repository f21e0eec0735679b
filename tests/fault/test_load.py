"""Load: the daemon (a real `atoz-watcher run` process, API enabled, uvicorn on loopback) under
a sustained drop of 20 files/s while the API serves about 50 requests/s (GET /documents, and an
Upload every 25th request).

CI: 60 s of load. Long mode (``--long`` or ``ATOZ_FAULT_LONG=1``): 600 s. The database is
SQLite unless ``ATOZ_FAULT_LOAD_DB`` names another (``mariadb``, ``mariadb-opendental``).

Asserted: every dropped file has exactly one row, in its category, under its name, in its
folder; no API reply is a 5xx; the daemon's RSS grows by less than ``RSS_GROWTH_MB`` from the
end of the warm-up to the end of the load; the registration latency of the last 10 s (median) is
at most twice that of the first 10 s plus 0.5 s (no event lag building up). The figures (p50/p99
of registration and API latency, memory) are printed: docs/RELIABILITY.md quotes them.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.images import jpeg, png
from tests.support.leaks import SECRETS
from tests.support.processes import AtozProcess
from tests.support.worlds import World, make_world

pytestmark = pytest.mark.process  # the daemon as a process

LOAD_S_CI = 60.0
LOAD_S_LONG = 600.0
FILES_PER_S = 20.0
REQUESTS_PER_S = 50.0
UPLOAD_EVERY = 25  # one request in 25 is an Upload: 2 uploads/s
WINDOW_S = 10.0  # warm-up, and the first and last windows compared for lag
RSS_GROWTH_MB = 30.0
PATIENTS = 50
DRAIN_S = 60.0  # after the load, the time the last files may take (a hung daemon's bound)
STOP_S = 20.0

DEVELOPER_KEY = "dev-KEY-load-5b2e9f0c7a41d3"
CUSTOMER_KEY = "cust-KEY-load-0e8d4c6b2a97f1"
SECRETS.add(DEVELOPER_KEY, CUSTOMER_KEY, what="API key")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass
class Drop:
    pat: int
    folder: Path
    source: str  # the name written
    final: str  # the name it must end under
    category: int
    at: float  # wall-clock time.time() of the write


@dataclass
class Load:
    """What the threads record."""

    drops: list[Drop] = field(default_factory=list)
    api: list[tuple[str, int, float, float]] = field(default_factory=list)  # kind, status, s, at
    rss_kb: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, VmRSS)
    errors: list[str] = field(default_factory=list)


class DaemonProcess(AtozProcess):
    """`python -m atoz_watcher run` with the API on a free loopback port; JSON log in a file."""

    def __init__(self, world: World, log_path: Path) -> None:
        env = {
            k: v
            for k, v in world.cli_env().items()
            if not k.startswith(("NOTIFY_SOCKET", "WATCHDOG_"))
        }
        env.update(
            ATOZ_WATCHER__SETTLE_SECONDS="0.3",
            ATOZ_WATCHER__OPEN_SETTLE_SECONDS="2.0",
            ATOZ_METRICS__ENABLED="false",
            ATOZ_THUMBNAILS__WORKERS="2",
            ATOZ_API__ENABLED="true",
            ATOZ_API__HOST="127.0.0.1",
            ATOZ_API__PORT="0",
            ATOZ_API__KEYS=json.dumps(
                [{"developer_key": DEVELOPER_KEY, "customer_key": CUSTOMER_KEY}]
            ),
        )
        super().__init__("run", env=env, log_path=log_path, stop_s=STOP_S, log_mode="wb")

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not (found := self.events(name)):
            if self.proc.poll() is not None:
                pytest.fail(f"the daemon exited ({self.proc.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {name} within {timeout} s:\n{self.tail()}")
            time.sleep(0.05)
        return found[0]

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


@dataclass
class Clinic:
    world: World
    misc: int  # the first visible image category: files without a prefix
    xrays: int
    patients: list[tuple[int, Path]]


@pytest.fixture
def load_clinic(tmp_path: Path) -> Iterator[Clinic]:
    kind = os.environ.get("ATOZ_FAULT_LOAD_DB", "sqlite")
    for world in make_world(kind, tmp_path):
        misc = world.add_category("Misc", order=0)
        xrays = world.add_category("X-Rays", order=1)
        patients = []
        for i in range(PATIENTS):
            name = f"LoadP{i}x"
            patients.append((world.add_patient("Load", f"P{i}", name), world.folder(name)))
        yield Clinic(world=world, misc=misc, xrays=xrays, patients=patients)


def _paced(rate: float, stop: threading.Event, until: float) -> Iterator[int]:
    """0, 1, 2, ... at ``rate`` per second (no drift: against a fixed schedule) until the
    monotonic deadline ``until`` or ``stop``."""
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        due = start + n / rate
        if due >= until:
            return
        if (wait := due - time.monotonic()) > 0 and stop.wait(wait):
            return
        yield n
        n += 1


def _dropper(clinic: Clinic, load: Load, stop: threading.Event, until: float) -> None:
    images = [jpeg(colour=(seed % 256, 80, 160)) for seed in range(16)]
    try:
        for n in _paced(FILES_PER_S, stop, until):
            pat, folder = clinic.patients[n % len(clinic.patients)]
            final = f"load{n}.jpg"
            prefixed = n % 2 == 1
            source = f"_{clinic.xrays}_{final}" if prefixed else final
            category = clinic.xrays if prefixed else clinic.misc
            at = time.time()
            (folder / source).write_bytes(images[n % len(images)])
            load.drops.append(Drop(pat, folder, source, final, category, at))
    except Exception as exc:  # noqa: BLE001 - reported by the test, which fails on it
        load.errors.append(f"dropper: {exc!r}")


def _caller(
    url: str, clinic: Clinic, load: Load, stop: threading.Event, until: float, *, lane: int
) -> None:
    auth = {"Authorization": f"ODFHIR {DEVELOPER_KEY}/{CUSTOMER_KEY}"}
    lanes = 2
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
            for n in _paced(REQUESTS_PER_S / lanes, stop, until):
                pat, _ = clinic.patients[(n * lanes + lane) % len(clinic.patients)]
                started = time.perf_counter()
                if (n * lanes + lane) % UPLOAD_EVERY == 0:
                    payload = base64.b64encode(png((40, 30), (20, n % 256, 90))).decode("ascii")
                    SECRETS.add_payload(payload)
                    body = {"PatNum": pat, "rawBase64": payload, "extension": ".png"}
                    kind, reply = "upload", client.post("/api/v1/documents/Upload", json=body)
                else:
                    params = {"PatNum": pat}
                    kind, reply = "get", client.get("/api/v1/documents", params=params)
                elapsed = time.perf_counter() - started
                load.api.append((kind, reply.status_code, elapsed, time.time()))
    except Exception as exc:  # noqa: BLE001 - reported by the test, which fails on it
        load.errors.append(f"API caller {lane}: {exc!r}")


def _sampler(daemon: DaemonProcess, load: Load, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            load.rss_kb.append((time.monotonic(), daemon.rss_kb()))
        except OSError:  # the process is gone: the test reports why
            return


def _registered_at(daemon: DaemonProcess) -> dict[tuple[int, str], float]:
    """(PatNum, name written) -> wall-clock time of its document.registered line."""
    return {
        (int(e["patnum"]), str(e["source"])): datetime.fromisoformat(e["timestamp"]).timestamp()
        for e in daemon.events("document.registered")
    }


def _audit(clinic: Clinic, drops: list[Drop]) -> tuple[list[str], list[str], list[str]]:
    """(lost, duplicated, misplaced) among the dropped files, and duplicates among all rows."""
    rows = clinic.world.documents()
    by_key = Counter((r["PatNum"], r["FileName"]) for r in rows)
    category = {(r["PatNum"], r["FileName"]): r["DocCategory"] for r in rows}
    duplicated = [f"{key}: {count} rows" for key, count in by_key.items() if count > 1]
    lost, misplaced = [], []
    for drop in drops:
        key = (drop.pat, drop.final)
        if key not in by_key:
            lost.append(f"{drop.folder.name}/{drop.source}")
        elif category[key] != drop.category:
            misplaced.append(f"{drop.folder.name}/{drop.final}: category {category[key]}")
        elif not (drop.folder / drop.final).is_file() or (
            drop.source != drop.final and (drop.folder / drop.source).exists()
        ):
            misplaced.append(f"{drop.folder.name}/{drop.source}: not under {drop.final}")
    return lost, duplicated, misplaced


@dataclass
class Figures:
    drops: int
    requests: int
    all_s: list[float]  # registration latencies (drop to document.registered)
    first: list[float]  # of the files dropped in the first WINDOW_S
    last: list[float]  # of those dropped in the last WINDOW_S
    gets: list[float]
    uploads: list[float]
    statuses: Counter[int]
    baseline_mb: float  # median RSS over 5 s after the warm-up
    end_mb: float  # highest RSS in the last WINDOW_S of the load
    peak_mb: float
    trace_mb: list[float]  # RSS every WINDOW_S from the start of the load

    @property
    def growth_mb(self) -> float:
        return self.end_mb - self.baseline_mb

    @classmethod
    def of(
        cls, load: Load, registered: dict[tuple[int, str], float], *, began: float, until: float
    ) -> Figures:
        latencies = [
            (d.at, registered[(d.pat, d.source)] - d.at)
            for d in load.drops
            if (d.pat, d.source) in registered
        ]
        first_at, last_at = load.drops[0].at, load.drops[-1].at
        warm = [kb for at, kb in load.rss_kb if began + WINDOW_S <= at < began + WINDOW_S + 5]
        end = [kb for at, kb in load.rss_kb if until - WINDOW_S <= at <= until + 1]
        return cls(
            drops=len(load.drops),
            requests=len(load.api),
            all_s=[s for _, s in latencies],
            first=[s for at, s in latencies if at < first_at + WINDOW_S],
            last=[s for at, s in latencies if at > last_at - WINDOW_S],
            gets=[s for kind, _, s, _ in load.api if kind == "get"],
            uploads=[s for kind, _, s, _ in load.api if kind == "upload"],
            statuses=Counter(status for _, status, _, _ in load.api),
            baseline_mb=statistics.median(warm) / 1024 if warm else float("nan"),
            end_mb=max(end) / 1024 if end else float("nan"),
            peak_mb=max((kb for _, kb in load.rss_kb), default=0) / 1024,
            trace_mb=[
                next((kb / 1024 for at, kb in load.rss_kb if at >= mark), float("nan"))
                for mark in [began + i * WINDOW_S for i in range(int(until - began) // 10 + 1)]
            ],
        )

    def lines(self, kind: str, load_s: float, drained_s: float) -> list[str]:
        def ms(values: list[float], p: float) -> str:
            return f"{percentile(values, p) * 1000:.0f} ms"

        return [
            (
                f"load[{kind}] {load_s:.0f} s: {self.drops} files dropped "
                f"({self.drops / load_s:.1f}/s), {self.requests} API requests "
                f"({self.requests / load_s:.1f}/s: {len(self.gets)} GET, "
                f"{len(self.uploads)} Upload), statuses {dict(self.statuses)}, "
                f"last file registered {drained_s:.1f} s after the load"
            ),
            (
                f"  registration latency: p50 {ms(self.all_s, 50)}, p99 {ms(self.all_s, 99)}, "
                f"max {ms(self.all_s, 100)}; p50 of the first {WINDOW_S:.0f} s "
                f"{ms(self.first, 50)}, of the last {WINDOW_S:.0f} s {ms(self.last, 50)}"
            ),
            (
                f"  API latency: GET p50 {ms(self.gets, 50)}, p99 {ms(self.gets, 99)}; "
                f"Upload p50 {ms(self.uploads, 50)}, p99 {ms(self.uploads, 99)}"
            ),
            (
                f"  RSS: after warm-up {self.baseline_mb:.1f} MB, end {self.end_mb:.1f} MB "
                f"(growth {self.growth_mb:+.1f} MB, bound {RSS_GROWTH_MB:.0f} MB), "
                f"peak {self.peak_mb:.1f} MB; every {WINDOW_S:.0f} s: "
                + " ".join(f"{mb:.0f}" for mb in self.trace_mb)
            ),
        ]


def _report(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, lines: list[str]
) -> None:
    """On the terminal even when the test passes (docs/RELIABILITY.md quotes these lines)."""
    with capsys.disabled():
        sys.stdout.write("\n" + "\n".join(lines) + "\n")
    request.node.user_properties.extend(("load", line) for line in lines)


def test_sustained_drops_and_api_traffic(
    load_clinic: Clinic,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    fault_long: bool,
) -> None:
    clinic = load_clinic
    load_s = LOAD_S_LONG if fault_long else LOAD_S_CI
    load = Load()
    stop = threading.Event()
    daemon = DaemonProcess(clinic.world, tmp_path / "daemon.log")
    threads: list[threading.Thread] = []
    try:
        port = int(daemon.wait_event("api.listening", 60)["port"])
        daemon.wait_event("daemon.started", 60)
        daemon.wait_event("rescan.finished", 60)
        began = time.monotonic()
        until = began + load_s
        url = f"http://127.0.0.1:{port}"
        threads = [
            threading.Thread(target=_dropper, args=(clinic, load, stop, until), name="drops"),
            *(
                threading.Thread(
                    target=_caller,
                    args=(url, clinic, load, stop, until),
                    kwargs={"lane": lane},
                    name=f"api{lane}",
                )
                for lane in range(2)
            ),
            threading.Thread(target=_sampler, args=(daemon, load, stop), name="rss"),
        ]
        for thread in threads:
            thread.start()
        for thread in threads[:-1]:
            thread.join(load_s + 60)
        load_ended = time.monotonic()

        # Drain: every dropped file registered (or the deadline: then the audit says which).
        expected = {(d.pat, d.source) for d in load.drops}
        deadline = time.monotonic() + DRAIN_S
        while not expected <= _registered_at(daemon).keys() and time.monotonic() < deadline:
            if daemon.proc.poll() is not None:
                break
            time.sleep(0.2)
        drained_s = time.monotonic() - load_ended
        stop.set()
        for thread in threads:
            thread.join(STOP_S)
        assert daemon.proc.poll() is None, f"the daemon died:\n{daemon.tail()}"
        assert daemon.terminate() == 0, daemon.tail()
    finally:
        stop.set()
        for thread in threads:
            thread.join(STOP_S)
        daemon.close()

    assert not load.errors, load.errors
    figures = Figures.of(load, _registered_at(daemon), began=began, until=until)
    lost, duplicated, misplaced = _audit(clinic, load.drops)
    _report(
        capsys,
        request,
        [
            *figures.lines(clinic.world.kind, load_s, drained_s),
            f"  lost {len(lost)}, duplicated {len(duplicated)}, misplaced {len(misplaced)}",
        ],
    )

    assert (lost, duplicated, misplaced) == ([], [], []), daemon.tail()
    assert not [s for s in figures.statuses if s >= 500], figures.statuses
    assert set(figures.statuses) <= {200, 201}, figures.statuses
    assert len(load.drops) >= FILES_PER_S * load_s * 0.95, "the dropper fell behind"
    assert len(load.api) >= REQUESTS_PER_S * load_s * 0.9, "the API callers fell behind"
    assert figures.growth_mb < RSS_GROWTH_MB
    assert percentile(figures.last, 50) <= 2 * percentile(figures.first, 50) + 0.5, "event lag grew"
