"""The packed snapshot a daemon keeps between rescans gives the answers of the full one.

A wrong "known" would leave a new file unregistered by the safety rescan, and a wrong match
would file it under no patient or the wrong one: the packed form must agree exactly, for every
kind of folder and in any order of lookups (the walk's order is only a fast path).
"""

from __future__ import annotations

import random

import pytest

from atoz_watcher.ingest.rescan import Found, _Packed, _Snapshot
from atoz_watcher.rules.matching import PatientRow, Unmatched

PATIENTS = [
    PatientRow(1, "Smith", "John", "SmithJohn1"),
    PatientRow(2, "Twin", "A", "Twin5"),  # two patients, one folder: ambiguous
    PatientRow(3, "Twin", "B", "Twin5"),
    PatientRow(4, "O'Brien-Lee", "Seán", ""),  # to adopt: OBrienLeeSeán4
    PatientRow(6, "Lee", "", ""),  # computes Lee6, which patient 7 owns
    PatientRow(7, "Other", "", "Lee6"),
    PatientRow(8, "Straße", "", "ßtraße8"),  # letter folder ß (upper case "SS" is two)
    PatientRow(9, "Øster", "", "Øster9"),
    PatientRow(10, "Łukasz", "", "łukasz10"),
    PatientRow(11, "Bad", "", "Bad\0Name11"),  # no folder on disk can be called that
    PatientRow(12, "", "", ""),  # computes 12, letter folder 1
    PatientRow(13, "Zed", "", "Zed13"),
    PatientRow(14, "Nofolder", "", "Nofolder14"),  # no folder on disk
    PatientRow(15, "Smith", "John", ""),  # computes SmithJohn15
]
KNOWN = {
    1: {"a.jpg", "b.jpg", "_12_c.jpg"},
    4: {"x.jpg"},
    7: {"lee.jpg"},
    9: {"é.jpg", "日本.png"},
    13: {"", "b\0c.jpg", "z.jpg", "Thumbs.db"},
    15: {"s.jpg"},
    99: {"orphan.jpg"},  # a document of no patient we know
}
NAMES = [
    "SmithJohn1", "Twin5", "OBrienLeeSeán4", "Lee6", "ßtraße8", "Øster9", "łukasz10", "12",
    "Zed13", "Nofolder14", "SmithJohn15", "Smith4", "Nobody99", "SmithJohn", "smithjohn1",
    "SmithJohn1 ", "Zed1", "Zed133",
]  # fmt: skip
LETTERS = ["S", "T", "O", "L", "ß", "Ø", "Ł", "1", "Z", "N", "s", "A", "0", "SS"]
FILES = [
    "a.jpg", "b.jpg", "c.jpg", "_12_c.jpg", "x.jpg", "lee.jpg", "é.jpg", "日本.png", "z.jpg",
    "Thumbs.db", "s.jpg", "orphan.jpg", "b", "c.jpg\0", "A.JPG",
]  # fmt: skip


def snapshot() -> _Snapshot:
    """The reference: the full snapshot a one-patient rescan still uses."""
    return _Snapshot.build(PATIENTS, {pat_num: set(names) for pat_num, names in KNOWN.items()})


def packed_rows() -> _Packed:
    """The same rows packed as a whole-tree rescan reads them: streamed, in any order."""
    rows = [(pat_num, name) for pat_num, names in KNOWN.items() for name in sorted(names)]
    random.Random(5).shuffle(rows)
    return _Packed.from_rows(iter(PATIENTS), iter(rows))


def answer(found: Found) -> object:
    """What the rescan uses of a lookup: why unmatched, or the PatNum, whether to adopt, and
    which names on disk are known."""
    if isinstance(found, Unmatched):
        return found
    pat_num, adopt, known = found
    return (pat_num, adopt, {name for name in FILES if name in known})


def every_folder() -> list[tuple[str, str]]:
    return [(letter, name) for letter in LETTERS for name in NAMES]


@pytest.mark.parametrize("order", ["walk", "reversed", "shuffled"])
def test_packed_answers_as_the_full_snapshot(order: str) -> None:
    full, packed = snapshot(), packed_rows()
    folders = sorted(every_folder(), key=lambda f: (f[0], f[1]))
    if order == "reversed":
        folders.reverse()
    elif order == "shuffled":
        random.Random(3).shuffle(folders)
    for letter, name in folders:
        assert answer(packed.lookup(letter, name)) == answer(full.lookup(letter, name)), (
            letter,
            name,
        )


def test_every_kind_of_folder_is_covered() -> None:
    results = [snapshot().lookup(letter, name) for letter, name in every_folder()]
    assert set(Unmatched) <= {r for r in results if isinstance(r, Unmatched)}
    assert {r[1] for r in results if not isinstance(r, Unmatched)} == {True, False}  # adopt


def test_an_adoption_is_kept() -> None:
    full, packed = snapshot(), packed_rows()
    for names in (full, packed):
        assert answer(names.lookup("O", "OBrienLeeSeán4")) == (4, True, {"x.jpg"})
        assert names.patient(4).pat_num == 4
        names.adopted(4, "OBrienLeeSeán4")
    for letter, name in every_folder():
        assert answer(packed.lookup(letter, name)) == answer(full.lookup(letter, name))
    assert answer(packed.lookup("O", "OBrienLeeSeán4")) == (4, False, {"x.jpg"})


def test_packed_from_an_empty_database() -> None:
    packed = _Packed.from_rows(iter([]), iter([]))
    assert len(packed) == 0
    assert packed.lookup("S", "SmithJohn1") == Unmatched.NO_PATIENT
    assert packed.lookup("s", "SmithJohn1") == Unmatched.WRONG_LETTER
