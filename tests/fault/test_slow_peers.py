"""Slow and stalled peers, and where the SFTP endpoints may connect (issue 13: 2, 3 and 6).

- An SFTP site whose reads never answer: UploadSftp gets its 400 within ``transfer_timeout``
  + 2 s, and the connection is dropped (the site sees its session end).
- 50 UploadSftp requests against that site at once: ``max_in_flight`` of them wait on it, the
  rest are answered at once with a 503 and Retry-After, and GET /documents answers within 1 s
  meanwhile.
- An HTTP server that announces 1 MB and sends a byte a second: the materialiser (in process,
  and ``atoz-watcher materialize``) drops it at ``materializer.timeout``.
- SFTP to loopback, link-local (cloud metadata) and private addresses, and to a port not in
  ``allow_ports``, is refused before any connection is attempted.

Every server is real and on 127.0.0.1. Every socket connect of the process is watched: one to
an address outside loopback is blocked (never sent) and fails the test.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from atoz_watcher.config.sections import MaterializerSettings, SftpSettings
from atoz_watcher.documents.materializer import Materializer
from atoz_watcher.net.download import downloader_for
from atoz_watcher.net.sftp import SftpClient
from atoz_watcher.net.sftp_address import Failure, SftpError
from atoz_watcher.rules.notes import Failure as MaterializeFailure
from atoz_watcher.rules.notes import MaterializeError
from atoz_watcher.storage import LocalAtoZ
from tests.support.api import DOCUMENTS, PAYLOAD
from tests.support.clinics import Clinic, make_clinic
from tests.support.placeholders import set_by_url
from tests.support.sftp_site import (
    PASSWORD,
    UPLOAD_SFTP,
    USER,
    SftpSite,
    creds,
    known_hosts,
    sftp_api,
)
from tests.support.sites import Route, Site, serving, table_resolver
from tests.support.waiting import wait_for
from tests.support.worlds import World

# The margin the issue allows past transfer_timeout for the 400.
MARGIN_S = 2.0
TRANSFER_S = 1.0
STALLED_REQUESTS = 50
MAX_IN_FLIGHT = SftpSettings().max_in_flight
ANNOUNCED = 1024 * 1024
CUT_S = 2.0


# -- watching every connect ------------------------------------------------------------------


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every socket connect of this process (asyncio's and httpx's go through these two);
    one to an address outside loopback is refused here, before a packet leaves."""
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(address: Any) -> None:
        if not isinstance(address, tuple):  # a Unix socket path
            return
        host, port = str(address[0]), int(address[1])
        with lock:
            seen.append((host, port))
        if not ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
            raise OSError(errno.ENETUNREACH, f"test: connect to {host} blocked")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return seen


def outside_loopback(seen: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return [(h, p) for h, p in seen if not ipaddress.ip_address(h.split("%", 1)[0]).is_loopback]


# -- an SFTP site whose reads never answer ---------------------------------------------------


@dataclass
class Stall:
    """Counts the reads the site left hanging; holds what they wait on (a strong reference,
    so a stuck session is cancelled when the site stops, not garbage-collected pending)."""

    reads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    never: list[asyncio.Event] = field(default_factory=list)


def stalling(stall: Stall) -> type[asyncssh.SFTPServer]:
    class StalledReads(asyncssh.SFTPServer):
        """Stats files as usual; opens none (no descriptor to leak) and never answers a read.
        asyncssh serves one request at a time per session, so nothing after it is answered
        either, a close included."""

        def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
            del path, pflags, attrs
            return object()

        def close(self, file_obj: object) -> None:
            del file_obj

        async def read(self, file_obj: object, offset: int, size: int) -> bytes:
            del file_obj, offset, size
            never = asyncio.Event()
            with stall.lock:
                stall.reads += 1
                stall.never.append(never)
            await never.wait()  # until the site stops (and cancels it)
            return b""

    return StalledReads


@pytest.fixture
def stalled() -> Stall:
    return Stall()


@pytest.fixture
def stalled_site(tmp_path: Path, stalled: Stall) -> Iterator[SftpSite]:
    root = tmp_path / "sftp-root"
    root.mkdir()
    (root / "scan.png").write_bytes(PAYLOAD)
    server = SftpSite(root=root, users={USER: PASSWORD}, sftp_server=stalling(stalled))
    # asyncssh builds each connection's options on the loop's executor: one thread, made at
    # start, so 50 connections at once add none while the API is up (its threads are counted).
    server._loop.set_default_executor(ThreadPoolExecutor(1, thread_name_prefix="sftp-site-io"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clinic(bare_world: World) -> Clinic:
    """SQLite and MariaDB."""
    return make_clinic(bare_world)


def test_a_stalled_sftp_read_gets_a_400_within_the_transfer_timeout(
    clinic: Clinic, stalled_site: SftpSite, stalled: Stall, tmp_path: Path
) -> None:
    with sftp_api(clinic, stalled_site, tmp_path, transfer_timeout=TRANSFER_S) as api:
        started = time.monotonic()
        reply = api.post(UPLOAD_SFTP, json=creds("scan.png", stalled_site, PatNum=clinic.pat))
        took = time.monotonic() - started

    print(f"stalled read: 400 after {took:.2f} s (transfer_timeout {TRANSFER_S:g} s)")  # noqa: T201
    assert reply.status_code == 400
    assert reply.json() == (
        f"Timed out transferring with the SFTP site 127.0.0.1:{stalled_site.port} "
        f"(after {TRANSFER_S:g} s)"
    )
    assert took < TRANSFER_S + MARGIN_S
    assert stalled.reads == 1
    # Dropped, not left open: the site sees the connection end (its SFTP session, stuck in
    # the read, does not notice until the site stops).
    wait_for(lambda: stalled_site.disconnections == 1, timeout=10)
    assert clinic.world.documents(clinic.pat) == []


def test_stalled_sftp_sites_cannot_take_every_worker(
    clinic: Clinic, stalled_site: SftpSite, stalled: Stall, tmp_path: Path
) -> None:
    results: list[tuple[int, str, float]] = []
    lock = threading.Lock()
    transfer_s = 4.0  # long enough to measure GET while every slot is held

    with sftp_api(clinic, stalled_site, tmp_path, transfer_timeout=transfer_s) as api:
        body = creds("scan.png", stalled_site, PatNum=clinic.pat)

        def post() -> None:
            started = time.monotonic()
            reply = api.post(UPLOAD_SFTP, json=body)
            with lock:
                results.append(
                    (
                        reply.status_code,
                        reply.headers.get("Retry-After", ""),
                        time.monotonic() - started,
                    )
                )

        threads = [
            threading.Thread(target=post, name=f"stalled-{i}") for i in range(STALLED_REQUESTS)
        ]
        for thread in threads:
            thread.start()
        # Every slot taken by a stalled read, every other request answered.
        wait_for(
            lambda: (
                stalled.reads == MAX_IN_FLIGHT and len(results) == STALLED_REQUESTS - MAX_IN_FLIGHT
            ),
            timeout=transfer_s,
        )
        started = time.monotonic()
        listed = api.get(DOCUMENTS, params={"PatNum": clinic.pat})
        get_s = time.monotonic() - started
        for thread in threads:
            thread.join(transfer_s + 10)

    refused = [r for r in results if r[0] == 503]
    statuses = Counter(status for status, _, _ in results)
    slowest_503 = max(took for _, _, took in refused)
    print(  # noqa: T201
        f"{STALLED_REQUESTS} stalled UploadSftp: {dict(statuses)}; GET /documents in "
        f"{get_s * 1000:.0f} ms; slowest 503 {slowest_503 * 1000:.0f} ms"
    )
    assert listed.status_code == 200
    assert get_s < 1.0
    assert statuses == {503: STALLED_REQUESTS - MAX_IN_FLIGHT, 400: MAX_IN_FLIGHT}
    assert all(retry == "5" for _, retry, _ in refused)
    # At once: all 42 came back while the 8 still held their slots (the wait above); one that
    # waited for a slot would have taken transfer_s at least.
    assert slowest_503 < transfer_s
    assert not any(t.is_alive() for t in threads)
    assert stalled.reads == MAX_IN_FLIGHT  # the refused ones never reached the site
    assert clinic.world.documents(clinic.pat) == []


def test_every_sftp_endpoint_is_refused_at_once_while_the_slots_are_taken(
    clinic: Clinic, stalled_site: SftpSite, stalled: Stall, tmp_path: Path
) -> None:
    """Before any other work: a DocNum, MountNum or PatNum that does not exist is not even
    looked up (a 503, not the 404 it would get otherwise)."""
    transfer_s = 3.0
    with sftp_api(
        clinic, stalled_site, tmp_path, transfer_timeout=transfer_s, max_in_flight=1
    ) as api:
        replies: list[int] = []
        holder = threading.Thread(
            target=lambda: replies.append(
                api.post(
                    UPLOAD_SFTP, json=creds("scan.png", stalled_site, PatNum=clinic.pat)
                ).status_code
            )
        )
        holder.start()
        wait_for(lambda: stalled.reads == 1, timeout=transfer_s)
        others = {
            path: api.post(path, json=creds("out/", stalled_site, **fields))
            for path, fields in (
                (UPLOAD_SFTP, {"PatNum": clinic.pat + 99}),
                ("/api/v1/documents/DownloadSftp", {"DocNum": 999}),
                ("/api/v1/documents/Thumbnails", {"PatNum": clinic.pat + 99}),
                ("/api/v1/documents/DownloadMount", {"MountNum": 999}),
            )
        }
        holder.join(transfer_s + 10)

    assert replies == [400]  # the one that held the slot: its deadline
    for path, reply in others.items():
        assert (reply.status_code, reply.headers.get("Retry-After")) == (503, "5"), path
        assert reply.json() == (
            "1 SFTP transfers are already in progress (the most allowed at once); try again later"
        )
    assert stalled.reads == 1


# -- an HTTP server that trickles ------------------------------------------------------------


@dataclass
class Trickle:
    """When the server started sending, and when the client dropped the connection."""

    started: float = 0.0
    dropped: float = 0.0
    sent: int = 0


def trickling(site: Site, trickle: Trickle) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(ANNOUNCED))
        handler.end_headers()
        trickle.started = time.monotonic()
        try:
            for _ in range(ANNOUNCED):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                trickle.sent += 1
                if site.release.wait(1.0):  # a byte a second, until teardown
                    return
        except OSError:  # the client dropped the connection: the next write fails
            trickle.dropped = time.monotonic()

    return route


@pytest.fixture
def trickle_site() -> Iterator[tuple[Site, Trickle]]:
    trickle = Trickle()
    with serving() as site:
        site.routes["/pano.png"] = trickling(site, trickle)
        yield site, trickle


def test_a_trickling_download_is_cut_at_the_timeout(
    bare_world: World, trickle_site: tuple[Site, Trickle]
) -> None:
    site, trickle = trickle_site
    world = bare_world
    category = world.add_category("X-Rays", order=0)
    pat = world.add_patient("Smith", "John")
    doc_num = set_by_url(world, pat, site.url("/pano.png"))
    materializer = Materializer(
        world.engine,
        LocalAtoZ(world.root),
        MaterializerSettings(timeout=CUT_S, allow_hosts=("127.0.0.1",), max_attempts=1),
        lock_timeout_s=30,
    )
    del category

    started = time.monotonic()
    summary = materializer.run_once()
    took = time.monotonic() - started

    print(f"trickle in process: failed after {took:.2f} s, {trickle.sent} bytes sent")  # noqa: T201
    ((failed, reason),) = summary.failed
    assert failed == doc_num
    assert reason == (
        f"timeout: took longer than {CUT_S:g} s fetching {site.url('/pano.png')} "
        "(connection dropped)"
    )
    assert CUT_S - 0.1 < took < CUT_S + 1.5
    assert trickle.sent <= CUT_S + 2
    # The server sees the connection gone (its next byte fails), not a polite wait.
    wait_for(lambda: trickle.dropped > 0, timeout=5)
    assert not any(p.is_file() for p in world.root.rglob("*"))


@pytest.mark.process
def test_atoz_watcher_materialize_cuts_a_trickling_download(
    bare_world: World, trickle_site: tuple[Site, Trickle]
) -> None:
    site, trickle = trickle_site
    world = bare_world
    world.add_category("X-Rays", order=0)
    pat = world.add_patient("Smith", "John")
    doc_num = set_by_url(world, pat, site.url("/pano.png"))
    env = world.cli_env()
    env.update(
        ATOZ_MATERIALIZER__TIMEOUT=f"{CUT_S:g}",
        ATOZ_MATERIALIZER__ALLOW_HOSTS='["127.0.0.1"]',
        ATOZ_THUMBNAILS__ENABLED="false",
    )

    result = subprocess.run(
        [sys.executable, "-m", "atoz_watcher", "materialize"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    ended = time.monotonic()
    # From the response's start to the command's end (its summary written, the process gone):
    # the deadline started a moment before the response (connect, request).
    held = ended - trickle.started
    print(  # noqa: T201
        f"trickle, atoz-watcher materialize: the command ended {held:.2f} s after the "
        f"response began, {trickle.sent} bytes sent"
    )
    assert result.returncode == 1, result.stderr
    assert f"DocNum {doc_num}: timeout: took longer than {CUT_S:g} s" in result.stdout
    # The cut is at CUT_S; the rest is the command finishing (summary, database, exit).
    assert held < CUT_S + 3.0
    assert trickle.sent <= CUT_S + 2  # a byte a second, then nothing
    # The server finds the connection gone (a write fails), not left open.
    wait_for(lambda: trickle.dropped > 0, timeout=5)


# -- where SFTP may connect ------------------------------------------------------------------


REFUSED = [
    ("127.0.0.1", "is a loopback address"),
    ("169.254.169.254", "is a link-local address"),
    ("10.0.0.1", "is a private address"),
    ("[::1]", "is a loopback address"),
    ("[::ffff:169.254.169.254]", "is a link-local address"),
]


@pytest.fixture
def guarded_site(tmp_path: Path) -> Iterator[SftpSite]:
    root = tmp_path / "sftp-root"
    root.mkdir()
    (root / "scan.png").write_bytes(PAYLOAD)
    server = SftpSite(root=root, users={USER: PASSWORD})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("case", REFUSED, ids=[h for h, _ in REFUSED])
def test_sftp_to_an_internal_address_is_refused_before_connecting(
    clinic: Clinic,
    guarded_site: SftpSite,
    tmp_path: Path,
    connects: list[tuple[str, int]],
    case: tuple[str, str],
) -> None:
    host, reason = case
    body = {**creds("scan.png", guarded_site, PatNum=clinic.pat), "SftpAddress": f"{host}/x.png"}
    # Every host allowed by name (allow_hosts empty); the site's port allowed.
    with sftp_api(clinic, guarded_site, tmp_path, allow_hosts=()) as api:
        reply = api.post(UPLOAD_SFTP, json=body)

    bare = host.strip("[]")
    assert reply.status_code == 400
    assert reply.json().startswith(f"The SFTP host {bare} is not allowed here: ")
    assert reason in reply.json()
    assert guarded_site.connections == 0
    assert outside_loopback(connects) == []
    assert (bare, guarded_site.port) not in connects  # not even loopback
    assert clinic.world.documents(clinic.pat) == []


def test_a_port_not_allowed_is_refused_before_connecting(
    clinic: Clinic, guarded_site: SftpSite, tmp_path: Path, connects: list[tuple[str, int]]
) -> None:
    body = creds("scan.png", guarded_site, PatNum=clinic.pat)
    with sftp_api(clinic, guarded_site, tmp_path, allow_ports=(22,)) as api:
        reply = api.post(UPLOAD_SFTP, json=body)

    assert (reply.status_code, reply.json()) == (
        400,
        f"The SFTP port {guarded_site.port} is not allowed here ([sftp] allow_ports)",
    )
    assert guarded_site.connections == 0
    assert ("127.0.0.1", guarded_site.port) not in connects


def test_an_allowed_internal_host_is_reached(
    clinic: Clinic, guarded_site: SftpSite, tmp_path: Path, connects: list[tuple[str, int]]
) -> None:
    """The same loopback site, listed in allow_hosts: the upload goes through."""
    with sftp_api(clinic, guarded_site, tmp_path, allow_hosts=("127.0.0.0/8",)) as api:
        reply = api.post(UPLOAD_SFTP, json=creds("scan.png", guarded_site, PatNum=clinic.pat))

    assert reply.status_code == 201, reply.text
    assert guarded_site.connections == 1
    assert connects.count(("127.0.0.1", guarded_site.port)) == 1
    assert outside_loopback(connects) == []


@pytest.mark.parametrize("host", ["169.254.169.254", "10.0.0.1", "10.1.2.3"])
def test_allow_hosts_lets_an_internal_address_through_the_guard(
    host: str, connects: list[tuple[str, int]]
) -> None:
    """Checked without a transfer (one would connect outside loopback): the guard passes it."""
    client = SftpClient(SftpSettings(allow_hosts=(host, "10.1.2.0/24")))
    for allowed in (host, "10.1.2.3"):
        credentials = client.credentials(f"{allowed}/x.png", 22, "u", "p")
        assert credentials.address.host == allowed
    refused = SftpClient(SftpSettings())
    with pytest.raises(SftpError) as caught:
        refused.credentials(f"{host}/x.png", 22, "u", "p")
    assert caught.value.kind is Failure.REFUSED_HOST
    assert connects == []


def test_a_name_is_resolved_once_and_judged_before_connecting(
    guarded_site: SftpSite, tmp_path: Path, connects: list[tuple[str, int]]
) -> None:
    lookups: list[str] = []
    names = table_resolver(
        {
            "inward.test": ["10.0.0.7"],
            "sftp.test": ["127.0.0.1"],
            "mixed.test": ["93.184.216.34", "10.0.0.8"],
        }
    )

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return list(names(host, port))

    settings = SftpSettings(
        known_hosts=known_hosts(tmp_path, guarded_site.known_hosts_line()),
        allow_ports=(guarded_site.port,),
        connect_timeout=10,
    )
    client = SftpClient(settings, resolver=resolver)

    def fetch(host: str) -> bytes:
        credentials = client.credentials(f"{host}/scan.png", guarded_site.port, USER, PASSWORD)
        return client.fetch(credentials)

    with capture_logs():
        for host in ("inward.test", "mixed.test"):
            with pytest.raises(SftpError) as caught:
                fetch(host)
            assert caught.value.kind is Failure.REFUSED_HOST, caught.value
        assert connects == []
        assert lookups == ["inward.test", "mixed.test"]  # once each, no connection after

        allowed = SftpClient(
            settings.model_copy(update={"allow_hosts": ("sftp.test",)}), resolver=resolver
        )
        credentials = allowed.credentials("sftp.test/scan.png", guarded_site.port, USER, PASSWORD)
        assert allowed.fetch(credentials) == PAYLOAD
    assert lookups[2:] == ["sftp.test"]
    # Connected to the address judged, never to the name.
    assert connects == [("127.0.0.1", guarded_site.port)]


@pytest.mark.process
def test_the_guard_makes_no_http_client_load() -> None:
    """Building the SFTP client (and its guard) loads neither httpx nor asyncssh."""
    program = (
        "import sys\n"
        "from atoz_watcher.config.sections import MaterializerSettings, SftpSettings\n"
        "from atoz_watcher.net.sftp import SftpClient\n"
        "SftpClient(SftpSettings()).credentials('93.184.216.34/x.png', 22, 'u', 'p')\n"
        "print(sorted(m for m in ('httpx', 'httpcore', 'asyncssh') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_sftp_settings_defaults_and_limits() -> None:
    settings = SftpSettings()
    assert settings.allow_ports == (22,)
    assert settings.allow_hosts == ()
    assert 1 <= settings.max_in_flight < 40  # well below the API's worker threads
    for bad in ({"allow_ports": ()}, {"allow_ports": (0,)}, {"allow_ports": (65536,)}):
        with pytest.raises(ValidationError):
            SftpSettings(**bad)
    with pytest.raises(ValidationError):
        SftpSettings(max_in_flight=0)


# -- the facade's own deadline ---------------------------------------------------------------


def test_a_session_that_never_unwinds_is_abandoned_and_keeps_its_slot(
    monkeypatch: pytest.MonkeyPatch, connects: list[tuple[str, int]]
) -> None:
    """The backstop: a session that ignores every deadline of its own (here it blocks its
    event loop) still frees the caller at connect + transfer timeout + 2 s; its slot stays
    taken until its thread really ends, so abandoned transfers count against max_in_flight."""
    from atoz_watcher.net import sftp_session  # noqa: PLC0415 - the module the facade runs

    stuck = threading.Event()
    release = threading.Event()

    async def blocked(*args: object) -> bytes:
        del args
        stuck.set()
        release.wait(30)  # blocks the loop itself: no timeout or cancellation reaches it
        return b""

    monkeypatch.setattr(sftp_session, "run", blocked)
    settings = SftpSettings(
        allow_hosts=("127.0.0.1",), connect_timeout=0.2, transfer_timeout=0.3, max_in_flight=1
    )
    client = SftpClient(settings)
    credentials = client.credentials("127.0.0.1/x.png", 22, "u", "p")
    limit = settings.connect_timeout + settings.transfer_timeout + 2.0
    try:
        with capture_logs() as logs:
            started = time.monotonic()
            with pytest.raises(SftpError) as caught:
                client.fetch(credentials)
            took = time.monotonic() - started
        assert stuck.is_set()
        assert caught.value.kind is Failure.TIMEOUT
        assert caught.value.message == (
            f"Timed out with the SFTP site 127.0.0.1:22 (after {limit:g} s)"
        )
        assert limit <= took < limit + 1.0
        assert [e["event"] for e in logs] == ["sftp.abandoned"]
        with pytest.raises(SftpError) as busy:
            client.require_room()
        assert busy.value.kind is Failure.BUSY
    finally:
        release.set()
    # Its thread ends, and gives the slot back.
    wait_for(lambda: not [t for t in threading.enumerate() if t.name == "atoz-sftp"], timeout=10)
    client.require_room()
    assert connects == []


def test_a_name_lookup_that_never_answers_is_cut_at_the_timeout() -> None:
    """The deadline covers the lookup too (the C library's resolver has limits of its own)."""
    release = threading.Event()

    def silent(host: str, port: int) -> list[str]:
        del host, port
        release.wait(30)
        return ["127.0.0.1"]

    downloader = downloader_for(
        MaterializerSettings(timeout=0.5, allow_hosts=("127.0.0.1",)), resolver=silent
    )
    try:
        started = time.monotonic()
        with pytest.raises(MaterializeError) as caught:
            downloader.fetch("http://files.test/pano.png")
        took = time.monotonic() - started
    finally:
        release.set()
    assert caught.value.kind is MaterializeFailure.TIMEOUT
    assert caught.value.reason == "no answer looking up files.test within the download's 0.5 s"
    assert took < 1.5
    wait_for(lambda: not [t for t in threading.enumerate() if t.name == "atoz-resolve"], timeout=10)
