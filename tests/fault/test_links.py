"""Links in the A-to-Z tree never carry a byte out of it or into it (issue 13, findings 1 and 7).

Each reproduction of the review runs against the real API (uvicorn on loopback), a real SFTP
site (asyncssh on 127.0.0.1) and both databases (SQLite and MariaDB). A private file outside
the tree (``SECRET``: a green PNG, unlike every red image in the tree) stands for what a link
could expose; a folder outside the tree stands for where a link could make us write. After
each test, the secret's bytes and its green pixels are on no file of the SFTP site, and the
outside folder holds exactly what it held before.

The race tests swap a file or folder with a link and back, atomically (renameat2's
RENAME_EXCHANGE: the name never goes missing), in a thread bounded by a count and a deadline,
while the requests, the registrar and the thumbnail worker run.
"""

from __future__ import annotations

import ctypes
import io
import os
import stat
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from PIL import Image
from structlog.testing import capture_logs

from atoz_watcher.app.check import check_links
from atoz_watcher.imaging.jobs import ThumbJob, thumbnail_of
from atoz_watcher.imaging.queue import ThumbnailWorker
from atoz_watcher.imaging.render import Renderer
from atoz_watcher.ingest.registrar import Candidate, Gone, Registered, Result
from atoz_watcher.ingest.rescan import LINK
from atoz_watcher.rules.layout import patient_dir
from atoz_watcher.system import fsops
from atoz_watcher.system.metrics import Metrics
from tests.support.api import DOCUMENTS, UPLOAD, api_settings, b64, serving
from tests.support.clinics import make_clinic
from tests.support.images import png
from tests.support.mounts import add_mount, add_mount_item, put_on_item
from tests.support.sftp_site import (
    DOWNLOAD_MOUNT,
    DOWNLOAD_SFTP,
    THUMBNAILS,
    UPLOAD_SFTP,
    SftpSite,
    creds,
    sftp_api,
    site,
)
from tests.support.worlds import World

__all__ = ["site"]  # the SFTP site fixture, used by name

GREEN = (0, 255, 0)
RED = (200, 30, 30)
_RENAME_EXCHANGE = 2
# The swap loops: at most this many exchanges, and never longer than this.
MAX_SWAPS = 4000
SWAP_DEADLINE_S = 20.0
HOLD_S = 0.001  # each state (link, real) is held about this long: requests meet both
ROUNDS = 12  # requests of each kind while a swap loop runs
_EPOCH = datetime(2000, 1, 1)  # a DateTStamp every thumbnail is newer than


SECRET = png((77, 33), GREEN)


def green_in(data: bytes) -> bool:
    """Does ``data`` (an image, or anything) show the secret's green?"""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            pixels = opened.convert("RGB").getcolors(maxcolors=1 << 20) or []
    except OSError:
        return False
    return any(g > 200 and r < 60 and b < 60 for _, (r, g, b) in pixels)


def leaks(site_root: Path) -> list[str]:
    """Files on the SFTP site that carry the secret: its bytes, or its picture."""
    found = []
    for path in site_root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if SECRET in data or green_in(data):
                found.append(str(path.relative_to(site_root)))
    return found


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry below ``folder``: a file's bytes, a folder's marker."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else "folder"
        for p in sorted(folder.rglob("*"))
    }


def exchange(a: Path, b: Path) -> None:
    """Swap two names atomically (renameat2 RENAME_EXCHANGE)."""
    func = fsops._renameat2()  # the libc entry the service uses
    if func is None:
        pytest.skip("renameat2 is not available")
    if func(-100, os.fsencode(a), -100, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        if err in {22, 38, 95}:  # EINVAL, ENOSYS, ENOTSUP: no RENAME_EXCHANGE here
            pytest.skip(f"RENAME_EXCHANGE is not supported: {os.strerror(err)}")
        raise OSError(err, os.strerror(err), str(a))


class Swapper:
    """Swaps each real path with a link out of the tree and back, until stopped (at most
    MAX_SWAPS exchanges, at most SWAP_DEADLINE_S); leaves every real path in place."""

    def __init__(self, pairs: list[tuple[Path, Path]]) -> None:
        self._pairs = []
        for real, target in pairs:
            link = real.with_name(f".swap-{real.name}")
            link.symlink_to(target)
            exchange(real, link)  # check RENAME_EXCHANGE works here before the thread starts
            exchange(real, link)
            self._pairs.append((real, link))
        self._stop = threading.Event()
        self.swaps = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="link-swapper")

    def _run(self) -> None:
        deadline = time.monotonic() + SWAP_DEADLINE_S
        try:
            while (
                not self._stop.is_set() and self.swaps < MAX_SWAPS and time.monotonic() < deadline
            ):
                for real, link in self._pairs:
                    exchange(real, link)  # the link in place
                self._stop.wait(HOLD_S)
                for real, link in self._pairs:
                    exchange(real, link)  # the real one back
                self.swaps += 1
                self._stop.wait(HOLD_S)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(SWAP_DEADLINE_S + 10)
        assert not self._thread.is_alive()
        for real, link in self._pairs:
            assert not real.is_symlink(), f"{real} left as a link"
            link.unlink()
        assert self.error is None, self.error
        assert self.swaps > 0
        print(f"link swaps: {self.swaps}")  # noqa: T201 - the figure docs/RELIABILITY.md cites


def upload(api: httpx.Client, pat: int, data: bytes, extension: str = ".png") -> tuple[int, str]:
    reply = api.post(UPLOAD, json={"PatNum": pat, "rawBase64": b64(data), "extension": extension})
    assert reply.status_code == 201, reply.text
    return int(reply.json()["DocNum"]), str(reply.json()["FileName"])


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Private files and a folder outside the A-to-Z tree."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.png").write_bytes(SECRET)
    (folder / "victim.txt").write_bytes(SECRET)
    (folder / "thumbs").mkdir()
    return folder


def link_refusals(logs: list[dict[str, Any]]) -> list[str]:
    return [str(e["path"]) for e in logs if e["event"] == "path.link_refused"]


# -- links in place before the request (finding 1) ----------------------------------------------


def test_files_that_are_links_are_refused(
    bare_world: World, site: SftpSite, tmp_path: Path, outside: Path
) -> None:
    clinic = make_clinic(bare_world)
    world = clinic.world
    before = snapshot(outside)
    with sftp_api(clinic, site, tmp_path) as api, capture_logs() as logs:
        linked, linked_name = upload(api, clinic.pat, png((40, 30), RED))
        fresh, fresh_name = upload(api, clinic.pat, png((60, 20), RED))
        # `ln -s /some/secret S/SmithJohn1/referral.png`
        (clinic.folder / linked_name).unlink()
        (clinic.folder / linked_name).symlink_to(outside / "secret.png")
        # A link in Thumbnails/, newer than the row's DateTStamp.
        (clinic.folder / "Thumbnails").mkdir()
        (clinic.folder / "Thumbnails" / fresh_name).symlink_to(outside / "secret.png")
        download = api.post(DOWNLOAD_SFTP, json=creds("out/", site, DocNum=linked))
        thumbnails = api.post(THUMBNAILS, json=creds("thumbs/", site, PatNum=clinic.pat))
        mount = add_mount(world, clinic.pat, clinic.xrays, Width=200, Height=100)
        for order, doc in enumerate((linked, fresh)):
            put_on_item(world, doc, add_mount_item(world, mount, order))
        mounted = api.post(DOWNLOAD_MOUNT, json=creds("mount/", site, MountNum=mount))
        composite = api.post(DOWNLOAD_SFTP, json=creds("composite/", site, MountNum=mount))
        # A FIFO at a document's place: refused at once, never opened for reading (a hang).
        piped, piped_name = upload(api, clinic.pat, png((10, 10), RED))
        (clinic.folder / piped_name).unlink()
        os.mkfifo(clinic.folder / piped_name)
        fifo = api.post(DOWNLOAD_SFTP, json=creds("fifo/", site, DocNum=piped))

    assert (fifo.status_code, fifo.json().startswith(f"Document {piped} has no file")) == (
        400,
        True,
    )
    assert download.status_code == 400
    assert "is a link" in download.json()
    only_fresh = [{"DocNum": fresh, "FileName": fresh_name}]
    assert (thumbnails.status_code, thumbnails.json()) == (201, only_fresh)
    # The link in Thumbnails/ was replaced by a real thumbnail of the real image.
    kept = clinic.folder / "Thumbnails" / fresh_name
    assert kept.is_file()
    assert not kept.is_symlink()
    assert (mounted.status_code, mounted.json()) == (201, only_fresh)
    assert composite.status_code == 201  # the linked item drawn empty
    assert leaks(site.root) == []
    assert snapshot(outside) == before
    refused = link_refusals(logs)
    assert f"S/SmithJohn{clinic.pat}/{linked_name}" in refused
    assert f"S/SmithJohn{clinic.pat}/Thumbnails/{fresh_name}" in refused
    assert all(not path.startswith("/") for path in refused)


def test_folders_that_are_links_are_refused(
    bare_world: World, site: SftpSite, tmp_path: Path, outside: Path
) -> None:
    clinic = make_clinic(bare_world)
    world = clinic.world
    before = snapshot(outside)
    # A patient folder that is a link out of the tree: E/EvilEve4 -> /elsewhere.
    evil = world.add_patient("Evil", "Eve")
    evil_folder = patient_dir(world.root, f"EvilEve{evil}")
    evil_folder.parent.mkdir(parents=True)
    evil_folder.symlink_to(outside, target_is_directory=True)
    world.add_document(evil, "victim.txt", clinic.xrays)
    victim = world.documents(evil)[0]["DocNum"]
    with sftp_api(clinic, site, tmp_path) as api, capture_logs() as logs:
        evil_upload = api.post(
            UPLOAD, json={"PatNum": evil, "rawBase64": b64(b"hello"), "extension": ".txt"}
        )
        evil_download = api.post(DOWNLOAD_SFTP, json=creds("evil/", site, DocNum=victim))
        # A Thumbnails folder that is a link.
        upload(api, clinic.pat, png((50, 50), RED))
        (clinic.folder / "Thumbnails").symlink_to(outside / "thumbs", target_is_directory=True)
        thumbnails = api.post(THUMBNAILS, json=creds("shown/", site, PatNum=clinic.pat))

    assert evil_upload.status_code == 400
    assert "link" in evil_upload.json()
    assert [d["FileName"] for d in world.documents(evil)] == ["victim.txt"]
    assert evil_download.status_code == 400
    assert "is a link" in evil_download.json()
    assert (thumbnails.status_code, thumbnails.json()) == (
        200,
        "No documents could be made into thumbnails.",
    )
    assert leaks(site.root) == []
    assert snapshot(outside) == before
    refused = link_refusals(logs)
    assert f"E/EvilEve{evil}" in refused
    assert f"S/SmithJohn{clinic.pat}/Thumbnails" in refused


# -- FileName values that are not plain names (finding 7) ---------------------------------------

UNSAFE_NAMES = ["../../../outside/secret.png", "/etc/passwd.png", "sub/x.png", "sub\\x.png", ".."]


def test_file_names_that_are_not_plain_are_refused(
    bare_world: World, site: SftpSite, tmp_path: Path, outside: Path
) -> None:
    clinic = make_clinic(bare_world)
    world = clinic.world
    (world.root / "outside").symlink_to(outside)  # even a name that would reach a link
    docs = {name: world.add_document(clinic.pat, name, clinic.xrays) for name in UNSAFE_NAMES}
    with sftp_api(clinic, site, tmp_path) as api:
        listing = api.get(DOCUMENTS, params={"PatNum": clinic.pat})
        ones = {name: api.get(f"{DOCUMENTS}/{doc}") for name, doc in docs.items()}
        downloads = {
            name: api.post(DOWNLOAD_SFTP, json=creds("out/", site, DocNum=doc))
            for name, doc in docs.items()
        }

    assert listing.status_code == 200
    by_name = {entry["FileName"]: entry for entry in listing.json()}
    for name in UNSAFE_NAMES:
        assert by_name[name]["filePath"] == ""
        assert ones[name].json()["filePath"] == ""
        assert downloads[name].status_code == 400
        assert "not a plain file name" in downloads[name].json()
    assert site.connections == 0
    assert leaks(site.root) == []


# -- rescan and check report links (finding 7) --------------------------------------------------


def test_rescan_and_check_report_a_patient_folder_that_is_a_link(
    bare_world: World, outside: Path
) -> None:
    world = bare_world
    world.add_category("X-Rays", order=1)
    pat = world.add_patient("Evil", "Eve", image_folder="")
    linked = patient_dir(world.root, f"EvilEve{pat}")
    linked.parent.mkdir(parents=True)
    linked.symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)

    with capture_logs() as logs:
        summary = world.rescan()
        checked = check_links(world.root)

    assert (f"E/EvilEve{pat}", LINK) in summary.unmatched
    assert summary.skipped[LINK] == 1
    assert summary.registered == 0
    assert world.documents() == []
    assert snapshot(outside) == before
    assert f"E/EvilEve{pat}" in link_refusals(logs)
    assert not checked.ok
    assert f"E/EvilEve{pat}" in checked.detail


# -- links swapped in during requests -----------------------------------------------------------


def test_links_swapped_in_during_requests_never_carry_a_byte(
    bare_world: World, site: SftpSite, tmp_path: Path, outside: Path
) -> None:
    clinic = make_clinic(bare_world)
    world = clinic.world
    other = world.add_patient("Jones", "Ann")
    (site.root / "incoming").mkdir()
    (site.root / "incoming" / "scan.png").write_bytes(png((20, 20), RED))
    before = snapshot(outside)
    statuses: list[int] = []
    with sftp_api(clinic, site, tmp_path) as api:
        doc, name = upload(api, clinic.pat, png((40, 30), RED))
        upload(api, other, png((30, 30), RED))
        (clinic.folder / "Thumbnails").mkdir()
        mount = add_mount(world, clinic.pat, clinic.xrays, Width=100, Height=100)
        put_on_item(world, doc, add_mount_item(world, mount, 0))
        other_folder = patient_dir(world.root, f"JonesAnn{other}")
        pairs = [
            (clinic.folder / name, outside / "secret.png"),  # the document's file
            (clinic.folder / "Thumbnails", outside / "thumbs"),  # its Thumbnails folder
            (other_folder, outside),  # a whole patient folder
        ]
        with Swapper(pairs):
            for round_ in range(ROUNDS):
                replies = [
                    api.post(DOWNLOAD_SFTP, json=creds(f"d{round_}/", site, DocNum=doc)),
                    api.post(DOWNLOAD_MOUNT, json=creds(f"m{round_}/", site, MountNum=mount)),
                    api.post(THUMBNAILS, json=creds(f"t{round_}/", site, PatNum=clinic.pat)),
                    api.post(
                        UPLOAD,
                        json={"PatNum": other, "rawBase64": b64(b"note"), "extension": ".txt"},
                    ),
                    api.post(
                        UPLOAD_SFTP,
                        json=creds("incoming/scan.png", site, PatNum=other),
                    ),
                ]
                statuses.extend(r.status_code for r in replies)
                assert all(r.status_code in {200, 201, 400} for r in replies), [
                    (r.status_code, r.text) for r in replies
                ]

    assert leaks(site.root) == []
    assert snapshot(outside) == before
    # What Upload and UploadSftp stored is in the real folder, one file per row.
    stored = {d["FileName"] for d in world.documents(other)}
    assert stored <= {p.name for p in other_folder.iterdir() if p.is_file()}
    assert statuses.count(201) > 0
    print(f"replies: {sorted(Counter(statuses).items())}")  # noqa: T201 - for the table


def test_the_registrar_and_thumbnail_worker_never_follow_a_swapped_in_link(
    bare_world: World, outside: Path
) -> None:
    world = bare_world
    xrays = world.add_category("X-Rays", order=1)
    pat = world.add_patient("Smith", "John", image_folder="")
    folder = world.folder(f"SmithJohn{pat}")
    names = [f"_{xrays}_scan{i}.png" for i in range(20)]
    for each in names:
        (folder / each).write_bytes(png((30, 20), RED))
        (outside / each).write_bytes(SECRET)  # what a followed link would rename or register
    before = snapshot(outside)
    registrar = world.registrar()
    results: list[Result] = []
    with Swapper([(folder, outside)]):
        for each in names:
            results.extend(registrar.register([Candidate(pat, folder, each)]))
    assert snapshot(outside) == before
    refused = [r for r in results if not isinstance(r, Registered)]
    assert {r.reason for r in refused} <= {Gone.LINK}, [
        (r.candidate.name, r.reason) for r in refused
    ]
    # The refused ones wait for the next rescan; once the link is gone they are registered.
    registrar.register([Candidate(pat, folder, r.candidate.name) for r in refused])
    rows = sorted(d["FileName"] for d in world.documents(pat))
    assert rows == sorted(each.removeprefix(f"_{xrays}_") for each in names)
    assert snapshot(outside) == before

    # The thumbnail worker, while the Thumbnails folder and an image swap with links.
    (folder / "Thumbnails").mkdir()
    jobs = [
        ThumbJob(
            source=folder / n,
            dest=thumbnail_of(folder / n),
            stamp=_EPOCH,
            pat_num=pat,
            doc_num=None,
        )
        for n in rows
    ]
    worker = ThumbnailWorker(Renderer(), workers=2, metrics=Metrics())
    worker.start()
    try:
        pairs = [
            (folder / "Thumbnails", outside / "thumbs"),
            (folder / rows[0], outside / "secret.png"),
        ]
        with Swapper(pairs):
            for _ in range(3):
                for job in jobs:
                    worker.submit(job)
                assert worker.wait_idle(timeout=60)
    finally:
        worker.close()
    assert snapshot(outside) == before
    for thumbnail in (folder / "Thumbnails").iterdir():
        assert not thumbnail.is_symlink()
        assert not green_in(thumbnail.read_bytes()), thumbnail.name


# -- what we create carries the root's group (issue 12, item 4) ---------------------------------


@pytest.mark.parametrize("setgid", [True, False], ids=["setgid-root", "plain-root"])
def test_created_files_and_folders_carry_the_roots_group_under_umask_022(
    bare_world: World, setgid: bool
) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving the root another group than ours needs root")
    group = 4242  # a group this process is not in
    world = bare_world
    os.chown(world.root, -1, group)
    os.chmod(world.root, 0o2775 if setgid else 0o775)  # noqa: PTH101
    clinic = make_clinic(world)
    old = os.umask(0o022)
    try:
        with serving(api_settings(world, thumbnails=True), world) as api:
            _, name = upload(api, clinic.pat, png((40, 30), RED))
            thumbnail = clinic.folder / "Thumbnails" / name
            deadline = time.monotonic() + 30
            while not thumbnail.exists():  # rendered after the reply
                assert time.monotonic() < deadline, "no thumbnail within 30 s"
                time.sleep(0.05)
    finally:
        os.umask(old)

    made = {
        "letter folder": clinic.folder.parent,
        "patient folder": clinic.folder,
        "uploaded file": clinic.folder / name,
        "Thumbnails folder": clinic.folder / "Thumbnails",
        "thumbnail": thumbnail,
    }
    for what, path in made.items():
        info = path.stat()
        assert info.st_gid == group, what
        wanted = stat.S_IRWXG if path.is_dir() else stat.S_IRGRP | stat.S_IWGRP
        assert info.st_mode & wanted == wanted, f"{what}: {stat.filemode(info.st_mode)}"
        if path.is_dir() and setgid:
            assert info.st_mode & stat.S_ISGID, what
