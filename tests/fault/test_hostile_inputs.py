"""The hostile input corpus (tests/fault/corpus/*.json): file names and odd files dropped into a
watched patient folder, API bodies sent to the real server, URLs given to the downloader.

For every case: no crash (the daemon keeps running, the server answers), no write outside the
A-to-Z root, no 5xx, and a clear reason (a skip reason, a 400 body naming the field, a refusal
naming what the address is). No network traffic leaves 127.0.0.0/8: names resolve through a
table, and every connection the downloader makes is checked to be to loopback.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import stat
import struct
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from atoz_watcher.api.service import encoded_limit
from atoz_watcher.config.sections import MaterializerSettings, SftpSettings
from atoz_watcher.net.download import downloader_for
from atoz_watcher.rules.notes import Failure, MaterializeError
from tests.support.api import api_settings, serving
from tests.support.clinics import make_clinic
from tests.support.daemons import running
from tests.support.sites import redirect
from tests.support.sites import serving as serving_site
from tests.support.waiting import wait_for
from tests.support.worlds import World

CORPUS = Path(__file__).parent / "corpus"
FILE_CASES: list[dict[str, Any]] = json.loads((CORPUS / "file_names.json").read_text())
API_CASES: list[dict[str, Any]] = json.loads((CORPUS / "api_bodies.json").read_text())
URL_CASES: list[dict[str, Any]] = json.loads((CORPUS / "urls.json").read_text())
MAX_UPLOAD = 1024
REGISTERED = "registered"
SPARSE_BYTES = 5 * 1024**3


def snapshot(top: Path, *, skip: tuple[Path, ...]) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``top`` outside ``skip``: (mode, size, mtime_ns), symlinks unfollowed."""
    seen: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for name in dirnames + filenames:
            info = (here / name).lstat()
            seen[str((here / name).relative_to(top))] = (
                info.st_mode,
                info.st_size,
                info.st_mtime_ns,
            )
    return seen


# -- file names and odd files ---------------------------------------------------------------


def case_name(case: dict[str, Any], cat: int) -> bytes:
    if "name_hex" in case:
        raw = bytes.fromhex(case["name_hex"])
        return raw.replace(b"{cat}", str(cat).encode())
    return os.fsencode(str(case["name"]).replace("{cat}", str(cat)))


def png_bomb(side: int) -> bytes:
    """A PNG header declaring ``side`` x ``side`` pixels, with one tiny IDAT: a bomb if decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )


def make_entry(folder: Path, name: bytes, kind: str) -> None:
    # Bytes paths throughout: a name that is not UTF-8 has no str form pathlib could write.
    path = os.path.join(os.fsencode(folder), name)  # noqa: PTH118
    what, _, arg = kind.partition(":")
    if what in {"file", "collide"}:
        with open(path, "wb") as handle:  # noqa: PTH123
            handle.write(b"hostile " + name)
    elif what == "empty":
        open(path, "wb").close()  # noqa: PTH123
    elif what == "garbage":
        with open(path, "wb") as handle:  # noqa: PTH123
            handle.write(os.urandom(4096))
    elif what == "sparse":
        with open(path, "wb") as handle:  # noqa: PTH123
            handle.truncate(int(arg))
    elif what == "pngbomb":
        with open(path, "wb") as handle:  # noqa: PTH123
            handle.write(png_bomb(int(arg)))
    elif what == "symlink":
        os.symlink(arg, path)  # noqa: PTH211
    elif what == "fifo":
        os.mkfifo(path)
    elif what == "chardev":
        major, minor = (int(n) for n in arg.split(":"))
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    elif what == "socket":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(path)
    else:
        raise AssertionError(f"unknown kind {kind}")


@pytest.fixture
def hostile_folder(bare_world: World) -> tuple[World, int, int, Path]:
    world = bare_world
    world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    pat = world.add_patient("Hostile", "Names", "HostileNames1")
    return world, pat, xrays, world.folder("HostileNames1")


def test_hostile_file_names_and_odd_files(hostile_folder: tuple[World, int, int, Path]) -> None:
    world, pat, cat, folder = hostile_folder
    parent = world.root.parent
    outside = snapshot(parent, skip=(world.root, world.state))
    etc_passwd = Path("/etc/passwd").stat()
    first = [c for c in FILE_CASES if c["kind"] == "collide"]
    (folder / "collide.jpg").write_bytes(b"already here")

    with capture_logs() as logs, running(world) as daemon:
        wait_for(lambda: len(world.documents(pat)) == 1)  # collide.jpg, found at start
        for case in FILE_CASES:
            make_entry(folder, case_name(case, cat), case["kind"])
        wanted = {
            str(c["final"]).replace("{cat}", str(cat))
            for c in FILE_CASES
            if c["expect"] == REGISTERED
        }
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            missing = wanted - {d["FileName"] for d in world.documents(pat)}
            if not missing:
                break
            time.sleep(0.1)
        assert not missing, f"not registered: {sorted(missing)}"
        (folder / "sentinel-last.jpg").write_bytes(b"s")
        wait_for(lambda: "sentinel-last.jpg" in {d["FileName"] for d in world.documents(pat)})
        assert daemon.mode == "native"  # still running and watching

    assert first
    rows = Counter(d["FileName"] for d in world.documents(pat))
    assert set(rows) == wanted | {"collide.jpg", "sentinel-last.jpg"}, "unexpected rows"
    assert max(rows.values()) == 1, "a file registered twice"
    assert not [e for e in logs if e.get("log_level") in ("error", "critical")], "errors logged"
    # Whatever was not registered is still where it was dropped, under its own name.
    on_disk = set(os.listdir(os.fsencode(folder)))  # noqa: PTH208 - bytes names
    for case in FILE_CASES:
        if case["expect"] != REGISTERED:
            assert case_name(case, cat) in on_disk, case["id"]
    # A rescan now gives each file left alone its reason, and registers nothing more.
    summary = world.rescan()
    expected = Counter(c["reason"] for c in FILE_CASES if c["expect"] != REGISTERED)
    assert summary.registered == 0
    assert dict(summary.skipped) == dict(expected)
    # Nothing written outside the A-to-Z root; symlink targets untouched.
    assert snapshot(parent, skip=(world.root, world.state)) == outside
    assert Path("/etc/passwd").stat().st_mtime_ns == etc_passwd.st_mtime_ns
    assert not any(p.is_symlink() for p in (folder / "Thumbnails").glob("*"))


# -- API bodies ------------------------------------------------------------------------------


def fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str) and value in values:
        return values[value]
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def test_hostile_api_bodies(bare_world: World) -> None:
    world = bare_world
    clinic = make_clinic(world)
    values = {
        "{pat}": clinic.pat,
        "{over_limit}": "A" * (encoded_limit(MAX_UPLOAD) + 4),
        "{far_over_limit}": "A" * (4 * 1024 * 1024),
    }
    settings = api_settings(world, max_upload_bytes=MAX_UPLOAD)
    settings = settings.model_copy(
        update={"sftp": SftpSettings(allow_hosts=("127.0.0.1",), known_hosts=None)}
    )
    parent = world.root.parent
    outside = snapshot(parent, skip=(world.root, world.state))
    failures: list[str] = []
    with capture_logs() as logs, serving(settings, world) as api:
        for case in API_CASES:
            url = f"/api/v1/documents/{case['endpoint']}"
            if "raw" in case:
                reply = api.post(
                    url, content=case["raw"], headers={"Content-Type": "application/json"}
                )
            else:
                reply = api.post(url, json=fill(case["body"], values))
            message = (
                reply.json() if reply.headers.get("content-type") == "application/json" else ""
            )
            if reply.status_code != case["status"] or case["field"] not in str(message):
                failures.append(f"{case['id']}: {reply.status_code} {str(message)[:200]}")
        alive = api.get("/api/v1/documents", params={"PatNum": clinic.pat})
    assert not failures, "\n".join(failures)
    assert alive.status_code < 500  # the server still answers
    assert world.documents() == [], "a hostile body made a row"
    assert [p for p in world.root.rglob("*") if p.is_file()] == []
    assert snapshot(parent, skip=(world.root, world.state)) == outside
    assert not [e for e in logs if e.get("event") == "api.internal_error"]


# -- URLs ------------------------------------------------------------------------------------

NAMES = {
    "localhost": ["127.0.0.1", "::1"],
    "intranet.test": ["10.0.0.5"],
    "metadata.test": ["169.254.169.254"],
    "rebind.test": ["127.0.0.1"],
    "mixed.test": ["93.184.216.34", "192.168.0.7"],
    "v6.test": ["::1"],
    "mapped.test": ["::ffff:127.0.0.1"],
}


def resolver(host: str, port: int) -> list[str]:
    """Names from NAMES; IP literals in every form the C library reads, never a DNS query."""
    if host in NAMES:
        return NAMES[host]
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    return [str(sockaddr[0]) for *_, sockaddr in found]


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every TCP connection attempt; one to an address outside loopback fails the test."""
    seen: list[str] = []
    real = socket.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        seen.append(address[0])
        assert ipaddress.ip_address(address[0]).is_loopback, f"connect to {address[0]}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return seen


@pytest.mark.parametrize("case", URL_CASES, ids=[c["id"] for c in URL_CASES])
def test_hostile_urls_are_refused_before_connecting(
    case: dict[str, Any], connections: list[str]
) -> None:
    if "redirect" not in case:
        downloader = downloader_for(MaterializerSettings(timeout=5), resolver=resolver)
        with pytest.raises(MaterializeError) as caught:
            downloader.fetch(case["url"])
        assert connections == [], "connected before refusing"
    else:
        with serving_site({"/redirect": redirect(case["redirect"])}) as site:
            downloader = downloader_for(
                MaterializerSettings(timeout=5, allow_hosts=("127.0.0.1",)), resolver=resolver
            )
            with pytest.raises(MaterializeError) as caught:
                downloader.fetch(case["url"].replace("{site}", site.url("")))
            assert [path for path, _ in site.requests] == ["/redirect"]  # never the target
        assert set(connections) == {"127.0.0.1"}
    assert caught.value.kind == Failure.REFUSED, caught.value
    assert case["reason"] in caught.value.reason, caught.value.reason
