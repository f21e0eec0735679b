"""The registrar and rescan against real files and both databases: Open Dental's import rules.

Each test builds a tree, runs the import, and checks what a practice would check: the rows in
``document`` and the files on disk.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from atoz_watcher.db.models import IMG_TYPE_DOCUMENT, IMG_TYPE_RADIOGRAPH
from atoz_watcher.errors import NoImageCategoryError
from atoz_watcher.ingest import registrar as registrar_module
from atoz_watcher.ingest.registrar import Candidate, Registered
from atoz_watcher.ingest.rescan import TOO_RECENT, Rescanner
from atoz_watcher.system.contained import Folder
from tests.support.images import write_dicom
from tests.support.worlds import World


@pytest.fixture
def setup(world: World) -> tuple[World, int, int, int, Path]:
    """A world with two visible categories (Misc first), a patient and its folder."""
    misc = world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    return world, misc, xrays, pat, world.folder("SmithJohn1")


def rows(world: World, pat: int) -> list[tuple[str, int]]:
    return sorted((d["FileName"], d["DocCategory"]) for d in world.documents(pat))


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


# -- Open Dental's rules, one by one ---------------------------------------------------------


def test_no_prefix(setup: tuple[World, int, int, int, Path]) -> None:
    world, misc, _, pat, folder = setup
    (folder / "scan.jpg").write_bytes(b"jpeg")

    summary = world.rescan()

    docs = world.documents(pat)
    assert [(d["FileName"], d["Description"], d["DocCategory"]) for d in docs] == [
        ("scan.jpg", "scan.jpg", misc)
    ]
    assert docs[0]["ImgType"] == IMG_TYPE_DOCUMENT
    assert docs[0]["MountItemNum"] == 0
    assert docs[0]["ExternalSource"] == "None"
    assert docs[0]["DateCreated"].year >= 2024  # "now", not Open Dental's empty date
    assert summary.registered == 1
    assert names(folder) == ["scan.jpg"]


def test_valid_prefix(setup: tuple[World, int, int, int, Path]) -> None:
    world, _, xrays, pat, folder = setup
    (folder / f"_{xrays}_pano.jpg").write_bytes(b"jpeg")

    world.rescan()

    assert rows(world, pat) == [("pano.jpg", xrays)]
    assert names(folder) == ["pano.jpg"]
    assert world.documents(pat)[0]["Description"] == "pano.jpg"


def test_hidden_category_prefix_is_accepted(setup: tuple[World, int, int, int, Path]) -> None:
    world, _, _, pat, folder = setup
    hidden = world.add_category("Old X-Rays", order=2, hidden=True)
    (folder / f"_{hidden}_old.jpg").write_bytes(b"jpeg")

    world.rescan()

    assert rows(world, pat) == [("old.jpg", hidden)]


def test_defnum_of_another_category_goes_to_default(
    setup: tuple[World, int, int, int, Path],
) -> None:
    world, misc, _, pat, folder = setup
    not_images = world.add_category("Adjustment types", order=0, category=1)
    (folder / f"_{not_images}_a.jpg").write_bytes(b"jpeg")

    world.rescan()

    assert rows(world, pat) == [("a.jpg", misc)]
    assert names(folder) == ["a.jpg"]


def test_unknown_defnum_goes_to_default(setup: tuple[World, int, int, int, Path]) -> None:
    world, misc, _, pat, folder = setup
    (folder / "_987654_b.jpg").write_bytes(b"jpeg")

    world.rescan()

    assert rows(world, pat) == [("b.jpg", misc)]
    assert names(folder) == ["b.jpg"]


def test_double_underscore_means_number_zero(setup: tuple[World, int, int, int, Path]) -> None:
    world, misc, _, pat, folder = setup
    (folder / "__x.jpg").write_bytes(b"jpeg")

    world.rescan()

    assert rows(world, pat) == [("x.jpg", misc)]
    assert names(folder) == ["x.jpg"]


def test_prefix_number_too_large_for_bigint(setup: tuple[World, int, int, int, Path]) -> None:
    world, misc, _, pat, folder = setup
    (folder / "_99999999999999999999999_big.jpg").write_bytes(b"jpeg")

    world.rescan()

    assert rows(world, pat) == [("big.jpg", misc)]
    assert names(folder) == ["big.jpg"]


def test_collision_with_a_file_on_disk(setup: tuple[World, int, int, int, Path]) -> None:
    world, misc, xrays, pat, folder = setup
    (folder / "x.jpg").write_bytes(b"first")
    (folder / "xx.jpg").write_bytes(b"second")
    (folder / f"_{xrays}_x.jpg").write_bytes(b"third")

    world.rescan()

    assert rows(world, pat) == [("x.jpg", misc), ("xx.jpg", misc), ("xxx.jpg", xrays)]
    assert (folder / "x.jpg").read_bytes() == b"first"
    assert (folder / "xx.jpg").read_bytes() == b"second"
    assert (folder / "xxx.jpg").read_bytes() == b"third"


def test_collision_with_an_existing_row_but_no_file(
    setup: tuple[World, int, int, int, Path],
) -> None:
    world, misc, xrays, pat, folder = setup
    world.add_document(pat, "lost.jpg", misc)  # its file was deleted long ago
    (folder / f"_{xrays}_lost.jpg").write_bytes(b"new")

    world.rescan()

    assert rows(world, pat) == [("lost.jpg", misc), ("xlost.jpg", xrays)]
    assert (folder / "xlost.jpg").read_bytes() == b"new"
    assert not (folder / "lost.jpg").exists()


def test_two_prefixed_files_wanting_the_same_name(
    setup: tuple[World, int, int, int, Path],
) -> None:
    world, misc, xrays, pat, folder = setup
    (folder / f"_{xrays}_same.jpg").write_bytes(b"a")
    (folder / f"_{misc}_same.jpg").write_bytes(b"b")

    world.rescan()

    docs = rows(world, pat)
    assert [name for name, _ in docs] == ["same.jpg", "xsame.jpg"]
    assert sorted(category for _, category in docs) == sorted([misc, xrays])
    by_name = dict(docs)
    content = {xrays: b"a", misc: b"b"}
    assert (folder / "same.jpg").read_bytes() == content[by_name["same.jpg"]]
    assert (folder / "xsame.jpg").read_bytes() == content[by_name["xsame.jpg"]]


def test_dot_files_and_thumbs_db_are_left_alone(setup: tuple[World, int, int, int, Path]) -> None:
    world, _, xrays, pat, folder = setup
    litter = [".DS_Store", "Thumbs.db", "thumbs.db", f".{xrays}_x.jpg", "._scan.jpg"]
    for name in litter:
        (folder / name).write_bytes(b"litter")

    summary = world.rescan()

    assert world.documents(pat) == []
    assert names(folder) == sorted(litter)
    assert summary.skipped["hidden"] == 3
    assert summary.skipped["thumbs-db"] == 2


def test_files_in_subfolders_are_ignored(setup: tuple[World, int, int, int, Path]) -> None:
    world, _, xrays, pat, folder = setup
    (folder / "Thumbnails").mkdir()
    (folder / "Thumbnails" / "scan.jpg").write_bytes(b"thumb")
    (folder / "old").mkdir()
    (folder / "old" / f"_{xrays}_deep.jpg").write_bytes(b"deep")

    summary = world.rescan()

    assert world.documents(pat) == []
    assert (folder / "old" / f"_{xrays}_deep.jpg").exists()
    assert summary.files_seen == 0


def test_folder_matching_no_patient(setup: tuple[World, int, int, int, Path]) -> None:
    world, _, xrays, _, _ = setup
    stray = world.folder("Nobody42")
    (stray / f"_{xrays}_orphan.jpg").write_bytes(b"orphan")
    wrong_letter = world.root / "Q" / "SmithJohn1"  # the right name under the wrong letter
    wrong_letter.mkdir(parents=True)
    (wrong_letter / "misplaced.jpg").write_bytes(b"misplaced")

    summary = world.rescan()

    assert world.documents() == []
    assert names(stray) == [f"_{xrays}_orphan.jpg"]  # not renamed, not moved
    assert names(wrong_letter) == ["misplaced.jpg"]
    assert sorted(summary.unmatched) == [
        ("N/Nobody42", "no-patient"),
        ("Q/SmithJohn1", "wrong-letter-folder"),
    ]


def test_patient_with_empty_image_folder_is_adopted(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    pat = world.add_patient("O'Brien-Lee", "Seán")
    name = f"OBrienLeeSeán{pat}"
    (world.folder(name) / "a.jpg").write_bytes(b"a")

    summary = world.rescan()

    assert world.image_folder(pat) == name
    assert rows(world, pat) == [("a.jpg", misc)]
    assert summary.adopted == [(pat, name)]


def test_renamed_patient_keeps_its_stored_folder(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    pat = world.add_patient("Jones", "Mary", "SmithMary7")  # married; folder name kept
    (world.folder("SmithMary7") / "a.jpg").write_bytes(b"a")
    (world.folder(f"JonesMary{pat}") / "b.jpg").write_bytes(b"b")

    summary = world.rescan()

    assert rows(world, pat) == [("a.jpg", misc)]
    assert world.image_folder(pat) == "SmithMary7"
    assert summary.unmatched == [(f"J/JonesMary{pat}", "no-patient")]


def test_non_ascii_names(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    photos = world.add_category("Fotos", order=1)
    pat = world.add_patient("Müller", "Zoë", "MüllerZoë3")
    folder = world.folder("MüllerZoë3")
    (folder / "ортопантомограмма.jpg").write_bytes(b"a")
    (folder / f"_{photos}_笑顔 ü.png").write_bytes(b"b")

    world.rescan()

    assert (folder.parent.name, folder.name) == ("M", "MüllerZoë3")
    assert rows(world, pat) == sorted([("ортопантомограмма.jpg", misc), ("笑顔 ü.png", photos)])
    assert names(folder) == sorted(["ортопантомограмма.jpg", "笑顔 ü.png"])


def test_undecodable_name_is_reported_and_left(setup: tuple[World, int, int, int, Path]) -> None:
    world, _, xrays, pat, folder = setup
    raw = os.fsencode(folder) + f"/_{xrays}_bad".encode() + b"\xff.jpg"
    Path(os.fsdecode(raw)).write_bytes(b"x")

    summary = world.rescan()

    assert world.documents(pat) == []
    assert summary.skipped["undecodable-name"] == 1
    assert os.path.exists(raw)  # noqa: PTH110 - a bytes path Path cannot hold


def test_prefixed_dcm_reads_windowing_from_renamed_file(
    setup: tuple[World, int, int, int, Path],
) -> None:
    world, _, xrays, pat, folder = setup
    write_dicom(folder / f"_{xrays}_bw.dcm", WindowCenter=2000, WindowWidth=1000)

    world.rescan()

    (doc,) = world.documents(pat)
    assert (doc["FileName"], doc["DocCategory"]) == ("bw.dcm", xrays)
    assert doc["ImgType"] == IMG_TYPE_RADIOGRAPH
    assert doc["PrintHeading"] == 1
    assert (doc["WindowingMin"], doc["WindowingMax"]) == (1500, 2500)


def test_already_registered_by_open_dental(setup: tuple[World, int, int, int, Path]) -> None:
    world, misc, _, pat, folder = setup
    doc = world.add_document(pat, "od.jpg", misc)
    (folder / "od.jpg").write_bytes(b"od")

    summary = world.rescan()

    assert [d["DocNum"] for d in world.documents(pat)] == [doc]
    assert summary.already_known == 1
    assert summary.registered == 0


def test_file_name_match_is_case_sensitive(setup: tuple[World, int, int, int, Path]) -> None:
    world, misc, _, pat, folder = setup
    world.add_document(pat, "Scan.JPG", misc)
    (folder / "scan.jpg").write_bytes(b"other file")

    world.rescan()

    assert rows(world, pat) == sorted([("Scan.JPG", misc), ("scan.jpg", misc)])


def test_no_image_category_is_an_error(world: World) -> None:
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    (world.folder("SmithJohn1") / "a.jpg").write_bytes(b"a")

    with pytest.raises(NoImageCategoryError):
        world.rescan()

    assert world.documents(pat) == []
    assert (world.folder("SmithJohn1") / "a.jpg").exists()


# -- exactly once ------------------------------------------------------------------------------


def test_rescan_twice_adds_nothing(setup: tuple[World, int, int, int, Path]) -> None:
    world, _, xrays, pat, folder = setup
    for i in range(5):
        (folder / f"_{xrays}_{i}.jpg").write_bytes(b"x")
        (folder / f"plain{i}.jpg").write_bytes(b"y")

    first = world.rescan()
    second = world.rescan()

    assert first.registered == 10
    assert second.registered == 0
    assert second.already_known == 10
    assert len(world.documents(pat)) == 10


def test_same_candidate_registered_twice_yields_one_row(
    setup: tuple[World, int, int, int, Path],
) -> None:
    world, misc, xrays, pat, folder = setup
    (folder / f"_{xrays}_once.jpg").write_bytes(b"x")
    (folder / "plain.jpg").write_bytes(b"y")
    candidates = [Candidate(pat, folder, f"_{xrays}_once.jpg"), Candidate(pat, folder, "plain.jpg")]
    registrar = world.registrar()

    first = registrar.register(candidates)
    second = registrar.register(candidates)  # a stale event for the same files

    assert all(isinstance(r, Registered) for r in first)
    assert [r.reason for r in second if not isinstance(r, Registered)] == [
        "vanished",
        "already-registered",
    ]
    assert rows(world, pat) == sorted([("once.jpg", xrays), ("plain.jpg", misc)])


class SimulatedCrashError(BaseException):
    """Stands for the process dying: nothing below catches a BaseException of ours."""


def test_crash_between_rename_and_insert_then_rescan(
    setup: tuple[World, int, int, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, misc, xrays, pat, folder = setup
    (folder / f"_{xrays}_crash.jpg").write_bytes(b"x")
    (folder / "plain.jpg").write_bytes(b"y")

    def crash(*_args: object, **_kwargs: object) -> None:
        raise SimulatedCrashError

    with monkeypatch.context() as patch:
        patch.setattr(registrar_module.Registrar, "_insert", crash)
        with pytest.raises(SimulatedCrashError):
            world.rescan()

    # The rename happened, no row did: the category now lives only in the journal.
    assert names(folder) == ["crash.jpg", "plain.jpg"]
    assert world.documents(pat) == []
    assert list((world.state / "journal").glob("*.json"))

    world.rescan()

    assert rows(world, pat) == sorted([("crash.jpg", xrays), ("plain.jpg", misc)])
    assert not list((world.state / "journal").glob("*.json"))
    world.rescan()
    assert len(world.documents(pat)) == 2


# -- the periodic rescan of a daemon: one Rescanner, run again and again ----------------------


def test_repeated_rescans_by_one_rescanner_see_new_files(
    setup: tuple[World, int, int, int, Path],
) -> None:
    world, misc, xrays, pat, folder = setup
    (folder / "a.jpg").write_bytes(b"a")
    scanner = world.rescanner()
    assert scanner.run().registered == 1
    assert scanner.run().already_known == 1  # unchanged tree, unchanged tables

    (folder / f"_{xrays}_b.jpg").write_bytes(b"b")  # arrives while no event is heard
    again = scanner.run()

    assert again.registered == 1
    assert rows(world, pat) == sorted([("a.jpg", misc), ("b.jpg", xrays)])


def test_rescanner_sees_a_row_deleted_by_someone_else(
    setup: tuple[World, int, int, int, Path],
) -> None:
    world, misc, _, pat, folder = setup
    (folder / "a.jpg").write_bytes(b"a")
    (folder / "b.jpg").write_bytes(b"b")
    scanner = world.rescanner()
    scanner.run()
    scanner.run()  # the snapshot is now kept
    first = world.documents(pat)[0]  # not the newest: MAX(DocNum) stays as it was
    with world.engine.begin() as conn:
        conn.execute(text("DELETE FROM document WHERE DocNum = :d"), {"d": first["DocNum"]})

    again = scanner.run()

    assert again.registered == 1
    assert rows(world, pat) == [("a.jpg", misc), ("b.jpg", misc)]
    assert first["DocNum"] not in [d["DocNum"] for d in world.documents(pat)]


def test_rescanner_keeps_an_adopted_folder(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    pat = world.add_patient("Adams", "Ann")
    folder = world.folder(f"AdamsAnn{pat}")
    (folder / "a.jpg").write_bytes(b"a")
    scanner = world.rescanner()
    scanner.run()
    scanner.run()

    (folder / "b.jpg").write_bytes(b"b")
    again = scanner.run()

    assert again.unmatched == []
    assert again.registered == 1
    assert rows(world, pat) == [("a.jpg", misc), ("b.jpg", misc)]


def test_name_taken_between_plan_and_rename(
    setup: tuple[World, int, int, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scanner drops a file under the planned name just before the rename: it is never
    replaced, and the retry's x-name also avoids the patient's existing rows."""
    world, misc, xrays, pat, folder = setup
    world.add_document(pat, "xa.jpg", misc)  # a row whose file is gone
    (folder / f"_{xrays}_a.jpg").write_bytes(b"ours")
    real_rename = registrar_module.rename_noreplace

    def rename_after_a_drop(src: Path, dst: Path, *, folder: Folder) -> None:
        if dst.name == "a.jpg" and not dst.exists():
            dst.write_bytes(b"dropped meanwhile")
        real_rename(src, dst, folder=folder)

    monkeypatch.setattr(registrar_module, "rename_noreplace", rename_after_a_drop)
    world.rescan()

    assert (folder / "a.jpg").read_bytes() == b"dropped meanwhile"
    assert (folder / "xxa.jpg").read_bytes() == b"ours"
    assert ("xxa.jpg", xrays) in rows(world, pat)
    assert not list((world.state / "journal").glob("*.json"))


def test_rescan_leaves_nas_litter_and_partial_downloads_alone(world: World) -> None:
    world.add_category("Misc", order=0)
    pat = world.add_patient("Nas", "Litter", "NasLitter1")
    folder = world.folder("NasLitter1")
    for name in ("a.tmp", "b.part", "c.crdownload", "~$d.docx", "real.jpg"):
        (folder / name).write_bytes(b"x")
    (world.root / "@eaDir" / "NasLitter1").mkdir(parents=True)  # Synology's index folders
    (world.root / "N" / "#recycle").mkdir()

    summary = world.rescan()

    assert [d["FileName"] for d in world.documents(pat)] == ["real.jpg"]
    assert summary.skipped["ignored"] == 4
    assert summary.unmatched == []
    assert (folder / "b.part").exists()


def test_rescan_leaves_a_file_written_a_moment_ago(world: World) -> None:
    world.add_category("Misc", order=0)
    pat = world.add_patient("Slow", "Scanner", "SlowScanner1")
    folder = world.folder("SlowScanner1")
    (folder / "old.jpg").write_bytes(b"x")
    (folder / "writing.jpg").write_bytes(b"x")
    now = time.time()
    os.utime(folder / "old.jpg", (now - 60, now - 60))
    rescanner = Rescanner(
        world.engine, world.registrar(), world.root, batch_size=50, min_age_s=2.0, clock=lambda: now
    )

    summary = rescanner.run()

    assert [d["FileName"] for d in world.documents(pat)] == ["old.jpg"]
    assert summary.skipped[TOO_RECENT] == 1
