"""Which patient owns a folder ``<Letter>/<name>`` of the A-to-Z tree."""

# ruff: noqa: RUF001 - a Cyrillic name is the point of one case

from __future__ import annotations

import pytest

from atoz_watcher.rules.matching import (
    FolderMatch,
    PatientRow,
    Unmatched,
    match_folder,
    trailing_pat_num,
)

SMITH = PatientRow(pat_num=15, lname="Smith", fname="John", image_folder="SmithJohn15")
SMITH_NO_FOLDER = PatientRow(pat_num=15, lname="Smith", fname="John", image_folder="")
# Another patient whose ImageFolder names the same folder (copied data, a merge gone wrong).
JANE_SAME_FOLDER = PatientRow(pat_num=16, lname="Smith", fname="Jane", image_folder="SmithJohn15")
# Patient 15 renamed after Open Dental saved the folder name: it keeps its folder.
RENAMED_WITH_FOLDER = PatientRow(
    pat_num=15, lname="Jones", fname="John", image_folder="SmithJohn15"
)
# Patient 15 renamed before any folder was saved: Open Dental would now compute JonesJohn15.
RENAMED_NO_FOLDER = PatientRow(pat_num=15, lname="Jones", fname="John", image_folder="")
SMITH_OTHER_FOLDER = PatientRow(pat_num=15, lname="Smith", fname="John", image_folder="SmithJ15")
SMITH_16_NO_FOLDER = PatientRow(pat_num=16, lname="Smith", fname="John", image_folder="")
NO_LETTERS = PatientRow(pat_num=15, lname="", fname="", image_folder="")
GARCIA = PatientRow(pat_num=2, lname="García Núñez", fname="María", image_folder="")
IVANOV = PatientRow(pat_num=9, lname="Иванов", fname="Иван", image_folder="")
DIGITS_IN_NAME = PatientRow(pat_num=15, lname="O'Brien-Smith 2", fname="John Paul", image_folder="")
LOWER = PatientRow(pat_num=15, lname="smith", fname="john", image_folder="")


def owned(patient: PatientRow) -> FolderMatch:
    return FolderMatch(patient=patient, adopt=False)


def adopted(patient: PatientRow) -> FolderMatch:
    return FolderMatch(patient=patient, adopt=True)


class TestMatchFolder:
    @pytest.mark.parametrize(
        ("letter", "name", "candidates", "expected"),
        [
            pytest.param("S", "SmithJohn15", [SMITH], owned(SMITH), id="image-folder"),
            pytest.param(
                "S",
                "SmithJohn15",
                [RENAMED_WITH_FOLDER],
                owned(RENAMED_WITH_FOLDER),
                id="renamed-keeps-folder",
            ),
            pytest.param("J", "SmithJohn15", [SMITH], Unmatched.WRONG_LETTER, id="wrong-letter"),
            pytest.param(
                "s", "SmithJohn15", [SMITH], Unmatched.WRONG_LETTER, id="lower-case-letter"
            ),
            pytest.param(
                "S",
                "SmithJohn15",
                [SMITH, JANE_SAME_FOLDER],
                Unmatched.AMBIGUOUS,
                id="two-patients-one-folder",
            ),
            pytest.param("S", "SmithJohn15", [SMITH, SMITH], owned(SMITH), id="same-patient-twice"),
            pytest.param(
                "S",
                "SmithJohn15",
                [SMITH_NO_FOLDER],
                adopted(SMITH_NO_FOLDER),
                id="adopt-computed-name",
            ),
            pytest.param(
                "S",
                "SmithJohn15",
                [SMITH_NO_FOLDER, SMITH_NO_FOLDER],
                adopted(SMITH_NO_FOLDER),
                id="adopt-offered-twice",
            ),
            pytest.param(
                "J",
                "SmithJohn15",
                [SMITH_NO_FOLDER],
                Unmatched.WRONG_LETTER,
                id="adopt-wrong-letter",
            ),
            pytest.param(
                "S",
                "SmithJohn15",
                [RENAMED_NO_FOLDER],
                Unmatched.NO_PATIENT,
                id="renamed-no-adoption",
            ),
            pytest.param(
                "S",
                "SmithJohn15",
                [SMITH_OTHER_FOLDER],
                Unmatched.NO_PATIENT,
                id="has-other-folder",
            ),
            pytest.param(
                "S",
                "SmithJohn15",
                [SMITH_16_NO_FOLDER],
                Unmatched.NO_PATIENT,
                id="other-patnum",
            ),
            pytest.param(
                "S",
                "smithjohn15",
                [SMITH_NO_FOLDER],
                Unmatched.NO_PATIENT,
                id="case-differs",
            ),
            pytest.param("S", "smithjohn15", [LOWER], adopted(LOWER), id="lower-case-names"),
            pytest.param("1", "15", [NO_LETTERS], adopted(NO_LETTERS), id="digit-only"),
            pytest.param(
                "O",
                "OBrienSmithJohnPaul15",
                [DIGITS_IN_NAME],
                adopted(DIGITS_IN_NAME),
                id="digits-hyphens-spaces-dropped",
            ),
            pytest.param("G", "GarcíaNúñezMaría2", [GARCIA], adopted(GARCIA), id="accents"),
            pytest.param("И", "ИвановИван9", [IVANOV], adopted(IVANOV), id="cyrillic"),
            pytest.param("S", "SmithJohn15", [], Unmatched.NO_PATIENT, id="no-candidates"),
            pytest.param("S", "Smith", [SMITH_NO_FOLDER], Unmatched.NO_PATIENT, id="no-patnum"),
        ],
    )
    def test_match_folder(
        self,
        letter: str,
        name: str,
        candidates: list[PatientRow],
        expected: FolderMatch | Unmatched,
    ) -> None:
        assert match_folder(letter, name, candidates) == expected

    def test_candidates_may_be_a_generator(self) -> None:
        rows = (row for row in [SMITH_NO_FOLDER, SMITH_NO_FOLDER])
        assert match_folder("S", "SmithJohn15", rows) == adopted(SMITH_NO_FOLDER)


class TestTrailingPatNum:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param("SmithJohn15", 15, id="computed"),
            pytest.param("15", 15, id="digits-only"),
            pytest.param("Smith007", 7, id="leading-zeros"),
            pytest.param("Sm1th15", 15, id="last-run-only"),
            pytest.param("SmithJohn9223372036854775807", 9_223_372_036_854_775_807, id="bigint"),
            pytest.param("Smith", None, id="no-digits"),
            pytest.param("Smith15a", None, id="digits-not-last"),
            pytest.param("", None, id="empty"),
            pytest.param("Smith\u0661\u0665", None, id="arabic-indic-digits"),
        ],
    )
    def test_trailing_pat_num(self, name: str, expected: int | None) -> None:
        assert trailing_pat_num(name) == expected
