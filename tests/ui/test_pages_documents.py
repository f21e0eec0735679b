"""A document's thumbnail and file over plain HTTP, on SQLite and MariaDB: Open Dental's fresh
Thumbnails/ file or one rendered now; the file as stored (in the folder, or RawBase64); a link
in a patient folder refused and never followed."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from PIL import Image

from tests.support.images import jpeg, png
from tests.support.ui import VIEWER, UiSite, serving_ui
from tests.support.worlds import World

pytestmark = pytest.mark.timeout(120)

SECRET = b"outside the A-to-Z root: never served"


@pytest.fixture
def site(bare_world: World) -> Iterator[UiSite]:
    with serving_ui(bare_world) as served:
        yield served


def test_a_document_without_a_fresh_thumbnail_gets_one_rendered_now(
    site: UiSite, bare_world: World
) -> None:
    photos = bare_world.add_category("Photos", order=1)
    pat = bare_world.add_patient("Smith", "John", "SmithJohn1")
    folder = bare_world.folder("SmithJohn1")
    data = jpeg((640, 480), (200, 20, 20))
    (folder / "face.jpg").write_bytes(data)
    doc = bare_world.add_document(pat, "face.jpg", photos, DateTStamp=datetime.now())

    with site.logged_in(VIEWER) as client:
        thumbnail = client.get(f"/ui/documents/{doc}/thumbnail")
        file = client.get(f"/ui/documents/{doc}/file")

    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        assert image.size == (100, 100)
        red, green, _blue = image.convert("RGB").getpixel((50, 50))
        assert red > 150 > green  # the picture, not a placeholder
    assert not (folder / "Thumbnails").exists()  # looking writes nothing
    assert file.status_code == 200
    assert file.content == data
    assert file.headers["content-type"] == "image/jpeg"
    assert file.headers["content-disposition"].startswith("inline")


def test_a_fresh_thumbnails_file_is_served_as_it_is(site: UiSite, bare_world: World) -> None:
    photos = bare_world.add_category("Photos", order=1)
    pat = bare_world.add_patient("Smith", "John", "SmithJohn1")
    folder = bare_world.folder("SmithJohn1")
    (folder / "face.png").write_bytes(png((300, 200), (200, 20, 20)))
    kept = png((100, 100), (20, 20, 200))
    (folder / "Thumbnails").mkdir()
    (folder / "Thumbnails" / "face.png").write_bytes(kept)
    stamp = datetime.now() - timedelta(hours=1)  # the thumbnail is newer than the row
    doc = bare_world.add_document(pat, "face.png", photos, DateTStamp=stamp)

    with site.logged_in(VIEWER) as client:
        fresh = client.get(f"/ui/documents/{doc}/thumbnail")
        old = (datetime.now() - timedelta(hours=2)).timestamp()
        os.utime(folder / "Thumbnails" / "face.png", (old, old))
        stale = client.get(f"/ui/documents/{doc}/thumbnail")

    assert fresh.status_code == 200
    assert fresh.headers["content-type"] == "image/png"
    assert fresh.content == kept
    assert stale.status_code == 200
    assert stale.content != kept  # older than the row: rendered again from the file
    assert stale.headers["content-type"] == "image/jpeg"


def test_a_link_in_a_patient_folder_is_refused_and_never_followed(
    site: UiSite, bare_world: World
) -> None:
    photos = bare_world.add_category("Photos", order=1)
    pat = bare_world.add_patient("Smith", "John", "SmithJohn1")
    folder = bare_world.folder("SmithJohn1")
    outside = bare_world.root.parent / "outside.jpg"
    outside.write_bytes(SECRET)
    (folder / "link.jpg").symlink_to(outside)
    doc = bare_world.add_document(pat, "link.jpg", photos, DateTStamp=datetime.now())

    with site.logged_in(VIEWER) as client:
        file = client.get(f"/ui/documents/{doc}/file")
        thumbnail = client.get(f"/ui/documents/{doc}/thumbnail")

    assert file.status_code == 404
    assert SECRET not in file.content
    assert 'role="alert"' in file.text
    assert "link" in file.text
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/svg+xml"  # the placeholder
    assert SECRET not in thumbnail.content


def test_a_missing_document_or_file_is_a_404_page(site: UiSite, bare_world: World) -> None:
    photos = bare_world.add_category("Photos", order=1)
    pat = bare_world.add_patient("Smith", "John", "SmithJohn1")
    bare_world.folder("SmithJohn1")
    gone = bare_world.add_document(pat, "gone.jpg", photos)

    with site.logged_in(VIEWER) as client:
        no_row = client.get(f"/ui/documents/{gone + 100}/file")
        no_file = client.get(f"/ui/documents/{gone}/file")
        no_thumbnail_row = client.get(f"/ui/documents/{gone + 100}/thumbnail")

    assert no_row.status_code == 404
    assert no_file.status_code == 404
    assert 'role="alert"' in no_file.text
    assert no_thumbnail_row.status_code == 404


def test_in_database_documents_come_from_raw_base64(bare_world: World) -> None:
    photos = bare_world.add_category("Photos", order=1)
    pat = bare_world.add_patient("Smith", "John", "SmithJohn1")
    data = jpeg((200, 100), (20, 200, 20))
    doc = bare_world.add_document(
        pat, "stored.jpg", photos, RawBase64=base64.b64encode(data).decode()
    )

    with serving_ui(bare_world, storage="InDatabase") as site, site.logged_in(VIEWER) as client:
        file = client.get(f"/ui/documents/{doc}/file")
        thumbnail = client.get(f"/ui/documents/{doc}/thumbnail")

    assert file.status_code == 200
    assert file.content == data
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        red, green, _blue = image.convert("RGB").getpixel((50, 50))
        assert green > 150 > red


def test_a_document_needs_a_login(site: UiSite) -> None:
    with site.client() as anonymous:
        assert anonymous.get("/ui/documents/1/file").status_code == 303
        assert anonymous.get("/ui/documents/1/thumbnail").status_code == 303
