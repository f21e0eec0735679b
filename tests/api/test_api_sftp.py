"""The SFTP endpoints against a real SFTP server on loopback.

The server is asyncssh, in this process, on 127.0.0.1 (a free port), in a thread and event loop
of its own, chrooted to a temporary folder, with a generated host key and password logins. The
API is the real uvicorn server of tests/support/api.py. Nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import base64
import logging
import socket
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest
from PIL import Image
from structlog.testing import capture_logs

from atoz_watcher.net.sftp_address import Failure, SftpError, host_allowed, parse_address
from tests.support.api import DOCUMENTS, FIELDS, PAYLOAD, UPLOAD, api_settings, b64, serving
from tests.support.clinics import Clinic, make_clinic
from tests.support.images import png
from tests.support.leaks import SECRETS
from tests.support.mounts import add_mount, add_mount_item, put_on_item
from tests.support.sftp_site import (
    DOWNLOAD_MOUNT,
    DOWNLOAD_SFTP,
    PASSWORD,
    THUMBNAILS,
    UPLOAD_SFTP,
    SftpSite,
    closed_port,
    creds,
    known_hosts,
    sftp_api,
    site,
)
from tests.support.waiting import wait_for
from tests.support.worlds import World

__all__ = ["site"]  # the SFTP site fixture, used by name


def upload(api: httpx.Client, clinic: Clinic, data: bytes, extension: str) -> int:
    reply = api.post(
        UPLOAD, json={"PatNum": clinic.pat, "rawBase64": b64(data), "extension": extension}
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["DocNum"])


STORAGES = ["LocalAtoZ", "InDatabase"]


# -- the address (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "host", "path"),
    [
        ("MySftpSite/myUsername/Documents/x.png", "MySftpSite", "/myUsername/Documents/x.png"),
        ("MySftpSite/Thumbnails/", "MySftpSite", "/Thumbnails/"),
        ("MySftpSite", "MySftpSite", "/"),
        ("10.0.0.5/a b/c.jpg", "10.0.0.5", "/a b/c.jpg"),
        ("[::1]/x.png", "::1", "/x.png"),
    ],
)
def test_an_address_is_the_host_then_a_path_from_the_root(
    address: str, host: str, path: str
) -> None:
    parsed = parse_address(address)
    assert (parsed.host, parsed.path) == (host, path)


@pytest.mark.parametrize(
    "address",
    ["", "/x.png", "bad host/x", "[nothost]/x", "h/a\x00b", "../../etc/passwd", "./x", "a..b/x"],
)
def test_a_malformed_address_is_refused(address: str) -> None:
    with pytest.raises(SftpError) as caught:
        parse_address(address)
    assert caught.value.kind is Failure.ADDRESS


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("anything", (), True),
        ("127.0.0.1", ("127.0.0.1",), True),
        ("SFTP.example.com", ("sftp.example.com",), True),
        ("::1", ("0:0::1",), True),
        ("localhost", ("127.0.0.1",), False),  # names are never resolved
        ("127.0.0.2", ("127.0.0.1",), False),
    ],
)
def test_the_allow_list(host: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert host_allowed(host, allowed) is expected


# -- UploadSftp --------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
def test_upload_sftp_pulls_the_file_and_stores_it(
    clinic: Clinic, site: SftpSite, tmp_path: Path, storage: str
) -> None:
    remote = site.root / "myUsername" / "Documents" / "SmithJRadiograph.png"
    remote.parent.mkdir(parents=True)
    remote.write_bytes(PAYLOAD)
    with sftp_api(clinic, site, tmp_path, storage=storage) as api:
        reply = api.post(
            UPLOAD_SFTP,
            json=creds(
                "myUsername/Documents/SmithJRadiograph.png",
                site,
                PatNum=clinic.pat,
                DateCreated="2021-05-26 08:16:46",
                DocCategory=clinic.photos,
                ImgType="Photo",
                ToothNumbers="1-5,8",
            ),
        )
        assert reply.status_code == 201, reply.text
        document = reply.json()
        listed = api.get(DOCUMENTS, params={"PatNum": clinic.pat}).json()

    doc_num = document["DocNum"]
    name = "SmithJRadiograph.png"  # the remote file's own name, as in the seed's example
    assert list(document) == FIELDS
    assert reply.headers["Location"] == f"/api/v1/documents/{doc_num}"
    assert {k: document[k] for k in ("FileName", "Description", "DocCategory", "ImgType")} == {
        "FileName": name,
        "Description": "SmithJRadiograph.png",
        "DocCategory": clinic.photos,
        "ImgType": "Photo",
    }
    assert document["ToothNumbers"] == "1,2,3,4,5,8"
    assert document["DateCreated"] == "2021-05-26 08:16:46"
    assert [entry["DocNum"] for entry in listed] == [doc_num]
    (row,) = clinic.world.documents(clinic.pat)
    if storage == "LocalAtoZ":
        assert (clinic.folder / name).read_bytes() == PAYLOAD
        assert document["filePath"].endswith(f"/S/SmithJohn{clinic.pat}/{name}")
    else:
        assert base64.b64decode(row["RawBase64"]) == PAYLOAD
        assert document["filePath"] == ""
    assert remote.read_bytes() == PAYLOAD  # pulled, not moved


def test_an_image_pulled_by_upload_sftp_gets_its_thumbnail(
    sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path
) -> None:
    clinic = sqlite_clinic
    remote = site.root / "myUsername" / "Documents" / "pano.png"
    remote.parent.mkdir(parents=True)
    remote.write_bytes(png())
    with sftp_api(clinic, site, tmp_path, thumbnails=True) as api:
        reply = api.post(
            UPLOAD_SFTP, json=creds("myUsername/Documents/pano.png", site, PatNum=clinic.pat)
        )
        assert reply.status_code == 201, reply.text
        thumbnail = clinic.folder / "Thumbnails" / reply.json()["FileName"]
        wait_for(thumbnail.exists, timeout=30)

    with Image.open(thumbnail) as image:
        assert image.size == (100, 100)


def test_upload_sftp_checks_the_patient_before_connecting(
    sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path
) -> None:
    with sftp_api(sqlite_clinic, site, tmp_path) as api:
        reply = api.post(UPLOAD_SFTP, json=creds("x.png", site, PatNum=sqlite_clinic.pat + 99))
    assert (reply.status_code, reply.json()) == (404, "Patient not found")
    assert site.connections == 0


def test_upload_sftp_refuses_a_deleted_patient_before_connecting(
    sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path
) -> None:
    world = sqlite_clinic.world
    world.delete_patient(sqlite_clinic.pat)
    (site.root / "x.png").write_bytes(PAYLOAD)
    with sftp_api(sqlite_clinic, site, tmp_path) as api:
        reply = api.post(UPLOAD_SFTP, json=creds("x.png", site, PatNum=sqlite_clinic.pat))
    assert (reply.status_code, reply.json()) == (
        400,
        "Patient is deleted; documents cannot be added to a deleted patient",
    )
    assert site.connections == 0
    assert world.documents(sqlite_clinic.pat) == []


# -- the SFTP failures -------------------------------------------------------------------------


def _upload_failure(
    clinic: Clinic, site: SftpSite, tmp_path: Path, body: dict[str, Any], **sftp: Any
) -> tuple[int, str]:
    (site.root / "there.png").write_bytes(PAYLOAD)
    with sftp_api(clinic, site, tmp_path, **sftp) as api:
        reply = api.post(UPLOAD_SFTP, json={"PatNum": clinic.pat, **body})
    assert clinic.world.documents(clinic.pat) == []
    return reply.status_code, reply.json()


def test_a_wrong_password_is_a_400(sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path) -> None:
    status, message = _upload_failure(
        sqlite_clinic, site, tmp_path, creds("there.png", site, SftpPassword="wrong")
    )
    assert status == 400
    assert message == (f"The SFTP site 127.0.0.1:{site.port} refused the user name or password")


@pytest.mark.parametrize("listed", ["nothing", "another key"])
def test_an_untrusted_host_key_is_a_400(
    sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path, listed: str
) -> None:
    lines = (
        [site.known_hosts_line(asyncssh.generate_private_key("ssh-ed25519"))]
        if listed == "another key"
        else []
    )
    status, message = _upload_failure(
        sqlite_clinic,
        site,
        tmp_path,
        creds("there.png", site),
        known_hosts=known_hosts(tmp_path, *lines),
    )
    assert status == 400
    assert "host key that is not trusted" in message
    assert "known_hosts" in message


def test_trusting_unknown_hosts_never_trusts_a_changed_key(
    sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path
) -> None:
    clinic = sqlite_clinic
    (site.root / "there.png").write_bytes(PAYLOAD)
    other = site.known_hosts_line(asyncssh.generate_private_key("ssh-ed25519"))
    for lines, expected in (([], 201), ([other], 400)):
        path = known_hosts(tmp_path, *lines)
        with sftp_api(clinic, site, tmp_path, known_hosts=path, trust_unknown_hosts=True) as api:
            reply = api.post(UPLOAD_SFTP, json=creds("there.png", site, PatNum=clinic.pat))
        assert reply.status_code == expected, reply.text


def test_a_missing_remote_file_is_a_400(
    sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path
) -> None:
    status, message = _upload_failure(sqlite_clinic, site, tmp_path, creds("nope/x.png", site))
    assert status == 400
    assert message.startswith("SFTP: ")
    assert "no such file" in message.lower()


def test_a_refused_port_is_a_400(sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path) -> None:
    port = closed_port()
    status, message = _upload_failure(
        sqlite_clinic, site, tmp_path, creds("there.png", site, SftpPort=port), allow_ports=(port,)
    )
    assert status == 400
    assert message.startswith(f"Could not connect to the SFTP site 127.0.0.1:{port}")
    assert "refused" in message.lower()


def test_a_silent_server_times_out(sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts (the kernel does), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = int(silent.getsockname()[1])
        status, message = _upload_failure(
            sqlite_clinic,
            site,
            tmp_path,
            creds("there.png", site, SftpPort=port),
            connect_timeout=0.5,
            allow_ports=(port,),
        )
    assert status == 400
    assert message == f"Timed out connecting to the SFTP site 127.0.0.1:{port} (after 0.5 s)"


def test_a_file_over_max_bytes_is_a_400(
    sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path
) -> None:
    status, message = _upload_failure(
        sqlite_clinic, site, tmp_path, creds("there.png", site), max_bytes=100
    )
    assert (status, message) == (400, "SFTP: /there.png is larger than the limit of 100 bytes")


@pytest.mark.parametrize("host", ["127.0.0.2", "localhost", "sftp.example.com"])
def test_a_host_outside_the_allow_list_is_refused_before_connecting(
    sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path, host: str
) -> None:
    body = {**creds("there.png", site), "SftpAddress": f"{host}/there.png"}
    status, message = _upload_failure(
        sqlite_clinic, site, tmp_path, body, allow_hosts=("127.0.0.1",)
    )
    assert (status, message) == (
        400,
        f"The SFTP host {host} is not allowed here ([sftp] allow_hosts)",
    )
    assert site.connections == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"SftpAddress": None}, "SftpAddress is required"),
        ({"SftpUsername": ""}, "SftpUsername is required"),
        ({"SftpPassword": None}, "SftpPassword is required"),
        ({"SftpPort": 0}, "SftpPort is invalid: Input should be greater than or equal to 1"),
        ({"SftpAddress": "127.0.0.1/folder/"}, "SftpAddress must name a file with an extension"),
        ({"SftpAddress": "/x.png"}, "SftpAddress must start with the SFTP site's host name"),
    ],
)
def test_upload_sftp_field_errors(
    sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    body = {**creds("there.png", site, PatNum=sqlite_clinic.pat), **changes}
    body = {k: v for k, v in body.items() if v is not None}
    with sftp_api(sqlite_clinic, site, tmp_path) as api:
        reply = api.post(UPLOAD_SFTP, json=body)
    assert reply.status_code == 400
    assert reply.json().startswith(message)
    assert site.connections == 0


def test_passwords_are_never_logged_or_echoed(
    sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clinic = sqlite_clinic
    (site.root / "there.png").write_bytes(PAYLOAD)
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-Pa55-word"
    SECRETS.add(wrong, what="SFTP password")
    with capture_logs() as logs, sftp_api(clinic, site, tmp_path) as api:
        first = api.post(UPLOAD_SFTP, json=creds("there.png", site, PatNum=clinic.pat))
        doc_num = first.json()["DocNum"]
        replies = [
            first,
            api.post(
                UPLOAD_SFTP,
                json=creds("there.png", site, PatNum=clinic.pat, SftpPassword=wrong),
            ),
            api.post(DOWNLOAD_SFTP, json=creds("out/", site, DocNum=doc_num)),
            api.post(DOWNLOAD_SFTP, json=creds("out/", site, DocNum=doc_num, SftpPassword=wrong)),
        ]
    server_lines = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    written = repr(logs) + "\n".join(server_lines) + "".join(r.text for r in replies)
    assert [r.status_code for r in replies] == [201, 400, 201, 400]
    assert any(entry["event"] == "sftp.failed" for entry in logs)
    for secret in (PASSWORD, wrong):
        assert secret not in written


# -- DownloadSftp ------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
def test_download_sftp_writes_the_document(
    clinic: Clinic, site: SftpSite, tmp_path: Path, storage: str
) -> None:
    image = png()
    with sftp_api(clinic, site, tmp_path, storage=storage) as api:
        doc_num = upload(api, clinic, image, ".png")
        name = f"SmithJohn{doc_num}.png"
        (site.root / "existing").mkdir()
        (site.root / "over.png").write_bytes(b"old content, longer than nothing")
        replies = {
            address: api.post(DOWNLOAD_SFTP, json=creds(address, site, DocNum=doc_num))
            for address in (
                "myUsername/new/deeper/SmithJohn.png",  # folders created
                "myUsername/Folder/",  # a folder: the document's FileName
                "myUsername/NoExtension",  # no extension: a folder too
                "existing",  # an existing folder
                "over.png",  # replaced
            )
        }

    expected = {
        "myUsername/new/deeper/SmithJohn.png": "/myUsername/new/deeper/SmithJohn.png",
        "myUsername/Folder/": f"/myUsername/Folder/{name}",
        "myUsername/NoExtension": f"/myUsername/NoExtension/{name}",
        "existing": f"/existing/{name}",
        "over.png": "/over.png",
    }
    for address, reply in replies.items():
        assert (reply.status_code, reply.json()) == (201, {"location": expected[address]})
        assert (site.root / expected[address].lstrip("/")).read_bytes() == image


def test_download_sftp_errors(sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path) -> None:
    clinic = sqlite_clinic
    clinic.world.add_document(clinic.pat, "", clinic.xrays, Note="_download_:http://x/y.png")
    with sftp_api(clinic, site, tmp_path) as api:
        doc_num = upload(api, clinic, png(), ".png")
        placeholder = doc_num - 1
        cases = [
            (creds("a.png", site), 400, "DocNum or MountNum is required"),
            (creds("a.png", site, DocNum=0, MountNum=0), 400, "DocNum or MountNum is required"),
            (creds("a.png", site, DocNum=doc_num, MountNum=3), 400, "Give DocNum or MountNum"),
            (creds("a.png", site, DocNum=doc_num + 50), 404, "Document not found"),
            (creds("a.png", site, MountNum=77), 404, "Mount not found"),
            (creds("a.jpg", site, DocNum=doc_num), 400, "SftpAddress must end in .png"),
            (creds("a.png", site, DocNum=placeholder), 400, f"Document {placeholder} has no file"),
        ]
        replies = [api.post(DOWNLOAD_SFTP, json=body) for body, _, _ in cases]
        (clinic.folder / f"SmithJohn{doc_num}.png").unlink()
        missing = api.post(DOWNLOAD_SFTP, json=creds("a.png", site, DocNum=doc_num))

    for (_, status, message), reply in zip(cases, replies, strict=True):
        assert reply.status_code == status, reply.text
        assert reply.json().startswith(message)
    assert missing.status_code == 400
    assert site.connections == 0
    assert list(site.root.iterdir()) == []


@pytest.mark.parametrize("storage", STORAGES)
def test_download_sftp_writes_a_mount_composite(
    bare_world: World, site: SftpSite, tmp_path: Path, storage: str
) -> None:
    clinic = make_clinic(bare_world)
    world = clinic.world
    mount = add_mount(world, clinic.pat, clinic.xrays, Width=200, Height=100, ColorBack=-16777216)
    items = [
        add_mount_item(world, mount, 0, Xpos=0, Ypos=0, Width=100, Height=100),
        add_mount_item(world, mount, 1, Xpos=100, Ypos=0, Width=100, Height=100),
    ]
    with sftp_api(clinic, site, tmp_path, storage=storage) as api:
        put_on_item(world, upload(api, clinic, png((100, 100)), ".png"), items[0])
        reply = api.post(DOWNLOAD_SFTP, json=creds("Mounts/", site, MountNum=mount))
        named = api.post(DOWNLOAD_SFTP, json=creds("Mounts/FMX.jpg", site, MountNum=mount))
        wrong = api.post(DOWNLOAD_SFTP, json=creds("Mounts/FMX.png", site, MountNum=mount))

    assert (reply.status_code, reply.json()) == (201, {"location": f"/Mounts/Mount{mount}.jpg"})
    assert (named.status_code, named.json()) == (201, {"location": "/Mounts/FMX.jpg"})
    assert wrong.status_code == 400
    for name in (f"Mount{mount}.jpg", "FMX.jpg"):
        with Image.open(site.root / "Mounts" / name) as composite:
            assert (composite.format, composite.size) == ("JPEG", (200, 100))
            red, green, blue = composite.convert("RGB").getpixel((50, 50))  # type: ignore[misc]
            assert red > 150 and green < 80 and blue < 80  # the image in item 0  # noqa: PT018


# -- Thumbnails --------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
def test_thumbnails_puts_each_image_thumbnail(
    clinic: Clinic, site: SftpSite, tmp_path: Path, storage: str
) -> None:
    with sftp_api(clinic, site, tmp_path, storage=storage) as api:
        wide = upload(api, clinic, png((300, 200)), ".png")
        tall = upload(api, clinic, png((50, 400)), ".jpg")  # PNG content under .jpg: still read
        upload(api, clinic, b"%PDF-1.4 not really", ".pdf")
        upload(api, clinic, b"not an image at all", ".gif")  # cannot be made: left out
        reply = api.post(THUMBNAILS, json=creds("myUsername/Thumbnails/", site, PatNum=clinic.pat))
        again = api.post(THUMBNAILS, json=creds("myUsername/Thumbnails", site, PatNum=clinic.pat))

    names = {wide: f"SmithJohn{wide}.png", tall: f"SmithJohn{tall}.jpg"}
    expected = [{"DocNum": d, "FileName": n} for d, n in names.items()]
    assert (reply.status_code, reply.json()) == (201, expected)
    assert (again.status_code, again.json()) == (201, expected)
    written = sorted(p.name for p in (site.root / "myUsername" / "Thumbnails").iterdir())
    assert written == sorted(names.values())
    for name in names.values():
        remote = site.root / "myUsername" / "Thumbnails" / name
        with Image.open(remote) as thumbnail:
            assert thumbnail.size == (100, 100)
        if storage == "LocalAtoZ":  # the same thumbnail the A-to-Z folder keeps
            assert remote.read_bytes() == (clinic.folder / "Thumbnails" / name).read_bytes()
    if storage == "InDatabase":
        assert not any(clinic.world.root.rglob("*.*"))


def test_thumbnails_answers(sqlite_clinic: Clinic, site: SftpSite, tmp_path: Path) -> None:
    clinic = sqlite_clinic
    body = creds("Thumbnails/", site, PatNum=clinic.pat)
    with sftp_api(clinic, site, tmp_path) as api:
        none_yet = api.post(THUMBNAILS, json=body)
        unknown = api.post(THUMBNAILS, json={**body, "PatNum": clinic.pat + 99})
        upload(api, clinic, b"%PDF-1.4", ".pdf")
        upload(api, clinic, PAYLOAD, ".dcm")
        nothing = api.post(THUMBNAILS, json=body)

    assert (none_yet.status_code, none_yet.json()) == (404, "No documents exist for this patient")
    assert (unknown.status_code, unknown.json()) == (404, "Patient not found")
    assert (nothing.status_code, nothing.json()) == (
        200,
        "No documents could be made into thumbnails.",
    )
    assert site.connections == 0


# -- DownloadMount -----------------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
def test_download_mount_puts_every_image_of_the_mount(
    bare_world: World, site: SftpSite, tmp_path: Path, storage: str
) -> None:
    clinic = make_clinic(bare_world)
    world = clinic.world
    mount = add_mount(world, clinic.pat, clinic.xrays, Width=200, Height=100)
    first, second, empty = (add_mount_item(world, mount, order) for order in (1, 0, 2))
    images = {".png": png((30, 20)), ".jpg": PAYLOAD}
    with sftp_api(clinic, site, tmp_path, storage=storage) as api:
        on_first = upload(api, clinic, images[".png"], ".png")
        on_second = upload(api, clinic, images[".jpg"], ".jpg")
        upload(api, clinic, PAYLOAD, ".bmp")  # not on the mount
        put_on_item(world, on_first, first)
        put_on_item(world, on_second, second)
        reply = api.post(DOWNLOAD_MOUNT, json=creds("myUsername/Mounts", site, MountNum=mount))
        unknown = api.post(DOWNLOAD_MOUNT, json=creds("Mounts/", site, MountNum=mount + 9))
        bare = add_mount(world, clinic.pat, clinic.xrays)
        add_mount_item(world, bare, 0)
        nothing = api.post(DOWNLOAD_MOUNT, json=creds("Mounts/", site, MountNum=bare))
    del empty

    expected = [
        {"DocNum": on_second, "FileName": f"SmithJohn{on_second}.jpg"},  # ItemOrder 0 first
        {"DocNum": on_first, "FileName": f"SmithJohn{on_first}.png"},
    ]
    assert (reply.status_code, reply.json()) == (201, expected)
    for entry in expected:
        name = str(entry["FileName"])
        written = (site.root / "myUsername" / "Mounts" / name).read_bytes()
        assert written == images[name[name.rindex(".") :]]
    assert sorted(p.name for p in (site.root / "myUsername" / "Mounts").iterdir()) == sorted(
        str(e["FileName"]) for e in expected
    )
    assert (unknown.status_code, unknown.json()) == (404, "Mount not found.")
    assert (nothing.status_code, nothing.json()) == (200, "No mount images could be downloaded.")


def test_the_schema_documents_the_sftp_endpoints(sqlite_clinic: Clinic) -> None:
    with serving(api_settings(sqlite_clinic.world), sqlite_clinic.world) as api:
        schema = api.get("/api/v1/openapi.json").json()
    for path in (UPLOAD_SFTP, DOWNLOAD_SFTP, THUMBNAILS, DOWNLOAD_MOUNT):
        assert "post" in schema["paths"][path]
    models = schema["components"]["schemas"]
    assert {"UploadSftpRequest", "DownloadSftpRequest", "ThumbnailsRequest"} <= set(models)
    assert models["UploadSftpRequest"]["properties"]["SftpPassword"]["format"] == "password"


def test_the_sftp_endpoints_need_a_key_pair(sqlite_clinic: Clinic, site: SftpSite) -> None:
    with serving(api_settings(sqlite_clinic.world), sqlite_clinic.world) as api:
        del api.headers["Authorization"]
        replies = [
            api.post(path, json=creds("x.png", site, PatNum=sqlite_clinic.pat, DocNum=1))
            for path in (UPLOAD_SFTP, DOWNLOAD_SFTP, THUMBNAILS, DOWNLOAD_MOUNT)
        ]
    assert [r.status_code for r in replies] == [401] * 4
    assert all(r.headers["WWW-Authenticate"] == "ODFHIR" for r in replies)
    assert site.connections == 0
