"""``atoz-watcher rescan`` reads each letter folder's FileNames when the walk reaches it
(``Rescanner(keep=False)``) instead of the whole tables: it must find exactly what the
whole-table read finds, on every database."""

from __future__ import annotations

from pathlib import Path

from atoz_watcher.ingest.rescan import Rescanner, Summary
from atoz_watcher.rules.layout import folder_name, patient_dir
from tests.support.worlds import World


def _files(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def make_tree(world: World) -> set[tuple[int, str]]:
    """Patients in several letter folders, every kind of folder; returns the (PatNum,
    FileName) pairs a rescan must register."""
    cat = world.add_category("X-Rays", order=0)
    expected: set[tuple[int, str]] = set()
    for n in range(30):  # known and new files over letter folders A, B, C
        lname = ("Adams", "Baker", "Clark")[n % 3]
        pat = world.add_patient(lname, f"P{n}", f"{lname}P{n}x")
        world.add_document(pat, "known.jpg", cat)
        _files(world.folder(f"{lname}P{n}x"), "known.jpg", f"new{n}.jpg")
        expected.add((pat, f"new{n}.jpg"))
    adopt = world.add_patient("Dunn", "Dee")  # empty ImageFolder: its folder gets adopted
    _files(patient_dir(world.root, folder_name("Dunn", "Dee", adopt)), "d.jpg")
    expected.add((adopt, "d.jpg"))
    for first in ("A", "B"):  # two patients, one folder: ambiguous, left alone
        world.add_patient("Evans", first, "EvansTwin")
    _files(world.folder("EvansTwin"), "e.jpg")
    wrong = world.add_patient("Ford", "F", "FordF1x")  # its folder under the wrong letter
    _files(world.root / "G" / "FordF1x", "f.jpg")
    _files(world.root / "N" / "Nobody999999", "h.jpg")  # no such patient
    wrong_known = world.add_document(wrong, "f.jpg", cat)
    assert wrong_known
    return expected


def _summary(
    world: World, *, keep: bool, dry_run: bool, handed: list[object] | None = None
) -> Summary:
    """A rescan; ``handed`` collects what it handed to the registrar."""
    scanner = Rescanner(
        world.engine,
        world.registrar(),
        world.root,
        batch_size=7,
        keep=keep,
        report=None if handed is None else handed.append,
    )
    return scanner.run(dry_run=dry_run)


def _fields(summary: Summary) -> tuple[object, ...]:
    return (
        summary.folders,
        summary.files_seen,
        summary.registered,
        summary.already_known,
        dict(summary.skipped),
        sorted(summary.unmatched),
        sorted(summary.adopted),
    )


def test_a_one_off_rescan_finds_what_the_whole_table_read_finds(world: World) -> None:
    expected = make_tree(world)

    whole = _summary(world, keep=True, dry_run=True)
    by_letter = _summary(world, keep=False, dry_run=True)
    assert _fields(by_letter) == _fields(whole)
    assert by_letter.registered == len(expected)
    assert {reason for _, reason in by_letter.unmatched} == {
        "ambiguous-folder",
        "wrong-letter-folder",
        "no-patient",
    }

    done = _summary(world, keep=False, dry_run=False)
    assert done.registered == len(expected)
    registered = {
        (row["PatNum"], row["FileName"])
        for row in world.documents()
        if row["FileName"] not in {"known.jpg", "f.jpg"}
    }
    assert registered == expected
    handed: list[object] = []
    again = _summary(world, keep=False, dry_run=False, handed=handed)
    assert again.registered == 0
    assert again.already_known == len(expected) + 30
    # Known from the names it read, not from the registrar's check: nothing handed to it.
    assert handed == []
