"""Documents made from bytes (Upload, materialised placeholders): one row, one stored file."""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path

import pytest

from atoz_watcher.db import queries
from atoz_watcher.documents.checks import CategoryError, PatientNotFoundError
from atoz_watcher.documents.writer import DocumentWriter, NewDocument
from atoz_watcher.rules.naming import FREE_NAME_TRIES, free_name_candidates
from atoz_watcher.storage import InDatabase, LocalAtoZ
from tests.support.daemons import running
from tests.support.waiting import wait_for
from tests.support.worlds import World

PAYLOAD = bytes(range(256)) * 1000


def writer(world: World, storage: object | None = None) -> DocumentWriter:
    return DocumentWriter(
        world.engine,
        storage or LocalAtoZ(world.root),  # type: ignore[arg-type]
        lock_timeout_s=30,
    )


@pytest.fixture
def smith(world: World) -> tuple[World, int, int]:
    category = world.add_category("X-Rays", order=0)
    pat = world.add_patient("Smith", "John")  # no ImageFolder yet: computed and stored
    return world, pat, category


def test_upload_to_the_folder_under_open_dentals_name(smith: tuple[World, int, int]) -> None:
    world, pat, category = smith

    created = writer(world).create(NewDocument(pat_num=pat, extension=".jpg"), PAYLOAD)

    (row,) = world.documents(pat)
    name = f"SmithJohn{created.doc_num}.jpg"
    assert (row["DocNum"], row["FileName"], row["Description"]) == (created.doc_num, name, name)
    assert (row["DocCategory"], row["Note"], row["RawBase64"]) == (category, "", "")
    assert world.image_folder(pat) == f"SmithJohn{pat}"
    assert (world.folder(f"SmithJohn{pat}") / name).read_bytes() == PAYLOAD


def test_fields_given_are_kept(smith: tuple[World, int, int]) -> None:
    world, pat, _ = smith
    photos = world.add_category("Photos", order=1)
    when = datetime(2022, 3, 15, 14, 30)

    writer(world).create(
        NewDocument(
            pat_num=pat,
            extension=".png",
            category=photos,
            img_type=2,
            description="Extraoral",
            date_created=when,
            tooth_numbers="1,2,3",
        ),
        PAYLOAD,
    )

    (row,) = world.documents(pat)
    assert (row["DocCategory"], row["ImgType"], row["Description"]) == (photos, 2, "Extraoral")
    assert (row["DateCreated"], row["ToothNumbers"]) == (when, "1,2,3")


def test_a_name_taken_on_disk_or_by_a_row_gets_x_prefixed(smith: tuple[World, int, int]) -> None:
    world, pat, category = smith
    folder = world.folder(f"SmithJohn{pat}")
    next_doc = world.add_document(pat, "a.txt", category) + 2
    world.add_document(pat, f"xSmithJohn{next_doc}.jpg", category)  # a row holds the x name
    (folder / f"SmithJohn{next_doc}.jpg").write_bytes(b"a scanner's file")  # a file the name

    created = writer(world).create(NewDocument(pat_num=pat, extension=".jpg"), PAYLOAD)

    assert created.doc_num == next_doc
    assert created.stored is not None
    assert created.stored.file_name == f"xxSmithJohn{next_doc}.jpg"
    assert (folder / f"SmithJohn{next_doc}.jpg").read_bytes() == b"a scanner's file"


def test_only_the_names_it_may_take_are_read_as_taken(smith: tuple[World, int, int]) -> None:
    world, pat, category = smith
    other = world.add_patient("Jones", "Ann")
    for name in ("scan.jpg", "xscan.jpg", "xxxscan.jpg", "other.jpg"):
        world.add_document(pat, name, category)
    world.add_document(other, "xxscan.jpg", category)  # another patient's: not taken here

    with world.engine.connect() as conn:
        taken = queries.taken_names(conn, pat_num=pat, names=free_name_candidates("scan.jpg"))

    assert taken == {"scan.jpg", "xscan.jpg", "xxxscan.jpg"}


def test_in_database_gives_up_when_every_name_it_may_take_is_taken() -> None:
    names = free_name_candidates("scan.jpg")
    assert len(names) == FREE_NAME_TRIES

    with pytest.raises(FileExistsError, match=r"no free name near scan\.jpg"):
        InDatabase().put(folder="", file_name="scan.jpg", data=b"x", taken=names)
    stored = InDatabase().put(folder="", file_name="scan.jpg", data=b"x", taken=names[:-1])
    assert stored.file_name == names[-1]


def test_in_database_keeps_the_bytes_in_the_row(smith: tuple[World, int, int]) -> None:
    world, pat, _ = smith

    created = writer(world, InDatabase()).create(
        NewDocument(pat_num=pat, extension=".pdf"), PAYLOAD
    )

    (row,) = world.documents(pat)
    assert row["FileName"] == f"SmithJohn{created.doc_num}.pdf"
    assert base64.b64decode(row["RawBase64"]) == PAYLOAD
    assert not any(world.root.rglob("*.pdf"))


def no_space(*_args: object, **_kwargs: object) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("failing", ["writing the file", "updating the row"])
def test_a_failed_write_leaves_neither_row_nor_file(
    smith: tuple[World, int, int], monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    world, pat, _ = smith
    if failing == "writing the file":
        monkeypatch.setattr("atoz_watcher.system.contained.os.fsync", no_space)
    else:
        monkeypatch.setattr("atoz_watcher.db.documents.fill", no_space)

    with pytest.raises(OSError, match="No space"):
        writer(world).create(NewDocument(pat_num=pat, extension=".jpg"), PAYLOAD)

    assert world.documents(pat) == []
    assert not any(p.is_file() for p in world.root.rglob("*"))


def test_unknown_patient_and_category_are_refused(smith: tuple[World, int, int]) -> None:
    world, pat, _ = smith
    other = world.add_category("Not images", order=0, category=1)

    with pytest.raises(PatientNotFoundError, match="Patient not found"):
        writer(world).create(NewDocument(pat_num=pat + 1, extension=".jpg"), PAYLOAD)
    with pytest.raises(CategoryError):
        writer(world).create(NewDocument(pat_num=pat, extension=".jpg", category=other), PAYLOAD)
    assert world.documents() == []
    assert not any(p.is_file() for p in world.root.rglob("*"))


def test_placeholder_is_materialised_once_keeping_its_docnum(
    smith: tuple[World, int, int],
) -> None:
    world, pat, category = smith
    note = "_download_:https://example.test/pano.png"
    created = writer(world).create_placeholder(
        NewDocument(pat_num=pat, extension=".png", description="Pano"), note
    )
    (row,) = world.documents(pat)
    assert (row["Note"], row["FileName"], row["DocCategory"]) == (note, "", category)

    done = writer(world).materialise(created.doc_num, note=note, extension=".png", data=PAYLOAD)
    again = writer(world).materialise(created.doc_num, note=note, extension=".png", data=PAYLOAD)

    assert done is not None
    assert again is None
    (row,) = world.documents(pat)
    name = f"SmithJohn{created.doc_num}.png"
    assert (row["DocNum"], row["FileName"], row["Note"]) == (created.doc_num, name, "")
    assert row["Description"] == "Pano"
    assert [p.name for p in world.root.rglob("*.png")] == [name]


@pytest.mark.parametrize("failing", ["writing the file", "updating the row"])
def test_a_failed_materialise_leaves_the_placeholder_and_no_file(
    smith: tuple[World, int, int], monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    world, pat, category = smith
    note = "_download_:https://example.test/pano.png"
    created = writer(world).create_placeholder(
        NewDocument(pat_num=pat, extension=".png", description="Pano"), note
    )
    before = world.documents(pat)
    if failing == "writing the file":
        monkeypatch.setattr("atoz_watcher.system.contained.os.fsync", no_space)
    else:
        monkeypatch.setattr("atoz_watcher.db.documents.fill", no_space)

    with pytest.raises(OSError, match="No space"):
        writer(world).materialise(created.doc_num, note=note, extension=".png", data=PAYLOAD)

    assert world.documents(pat) == before
    (row,) = before
    assert (row["Note"], row["FileName"], row["DocCategory"]) == (note, "", category)
    assert not any(p.is_file() for p in world.root.rglob("*"))


def test_the_daemon_does_not_register_an_uploaded_file_again(
    smith: tuple[World, int, int],
) -> None:
    world, pat, _ = smith
    folder = world.folder(f"SmithJohn{pat}")
    world.image_folder(pat)

    with running(world):
        created = writer(world).create(NewDocument(pat_num=pat, extension=".txt"), PAYLOAD)
        marker = folder / "marker.txt"
        marker.write_bytes(b"dropped after the upload")
        wait_for(lambda: len(world.documents(pat)) == 2)

    names = sorted(row["FileName"] for row in world.documents(pat))
    assert names == sorted([f"SmithJohn{created.doc_num}.txt", "marker.txt"])


def test_unsafe_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        LocalAtoZ(tmp_path).put(folder="..", file_name="a.jpg", data=b"x", taken=())
    with pytest.raises(ValueError, match="unsafe"):
        LocalAtoZ(tmp_path).put(folder="A", file_name="../a.jpg", data=b"x", taken=())
    assert list(tmp_path.iterdir()) == []
