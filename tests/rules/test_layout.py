"""Open Dental's patient folder layout: ``<root>/<Letter>/<ImageFolder>/Thumbnails/``."""

# ruff: noqa: RUF001 - Greek and Cyrillic names are the point of several cases

from __future__ import annotations

from pathlib import Path

import pytest

from atoz_watcher.rules.layout import folder_name, letter_folder, patient_dir, thumbnail_path

ROOT = Path("/srv/OpenDentImages")


class TestFolderName:
    @pytest.mark.parametrize(
        ("lname", "fname", "pat_num", "expected"),
        [
            pytest.param("Smith", "John", 15, "SmithJohn15", id="plain"),
            pytest.param("O'Brien", "Mary-Ann", 7, "OBrienMaryAnn7", id="apostrophe-hyphen"),
            pytest.param("Van der Berg", "Jo Ann", 3, "VanderBergJoAnn3", id="spaces"),
            pytest.param("Smith2", "John 3rd", 15, "SmithJohnrd15", id="digits-in-names"),
            pytest.param("Smith, Jr.", "John", 4, "SmithJrJohn4", id="punctuation"),
            pytest.param("smith", "JOHN", 15, "smithJOHN15", id="case-kept"),
            pytest.param("García Núñez", "María", 2, "GarcíaNúñezMaría2", id="accents-kept"),
            pytest.param("Müller", "Jürgen", 11, "MüllerJürgen11", id="umlauts"),
            pytest.param("Straße", "Ø", 12, "StraßeØ12", id="sharp-s-and-o-slash"),
            pytest.param("Παπαδόπουλος", "Γιώργος", 8, "ΠαπαδόπουλοςΓιώργος8", id="greek"),
            pytest.param("Иванов", "Иван", 9, "ИвановИван9", id="cyrillic"),
            pytest.param("王", "小明", 10, "王小明10", id="cjk"),
            pytest.param("", "", 15, "15", id="empty-names"),
            pytest.param("123", "- '", 15, "15", id="no-letters"),
            # Decomposed text: the combining accents (category Mn) are not letters.
            pytest.param("Nu\u0303n\u0303ez", "Jose\u0301", 4, "NunezJose4", id="decomposed"),
            pytest.param(
                "Smith",
                "John",
                9_223_372_036_854_775_807,
                "SmithJohn9223372036854775807",
                id="largest-patnum",
            ),
        ],
    )
    def test_folder_name(self, lname: str, fname: str, pat_num: int, expected: str) -> None:
        assert folder_name(lname, fname, pat_num) == expected

    def test_lname_comes_before_fname(self) -> None:
        assert folder_name("John", "Smith", 15) == "JohnSmith15"


class TestLetterFolder:
    @pytest.mark.parametrize(
        ("image_folder", "expected"),
        [
            pytest.param("SmithJohn15", "S", id="upper"),
            pytest.param("smithjohn15", "S", id="lower-upper-cased"),
            pytest.param("15", "1", id="digit-only"),
            pytest.param("ßmith3", "ß", id="sharp-s-stays"),
            pytest.param("ŉame5", "ŉ", id="multi-char-upper-stays"),
            pytest.param("émile4", "É", id="accented"),
            pytest.param("ωmega6", "Ω", id="greek"),
            pytest.param("иванов9", "И", id="cyrillic"),
            pytest.param("王小明10", "王", id="cjk"),
        ],
    )
    def test_letter_folder(self, image_folder: str, expected: str) -> None:
        assert letter_folder(image_folder) == expected

    def test_empty_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="empty"):
            letter_folder("")


class TestPatientDir:
    @pytest.mark.parametrize(
        ("image_folder", "expected"),
        [
            pytest.param("SmithJohn15", ROOT / "S" / "SmithJohn15", id="letters"),
            pytest.param("smithjohn15", ROOT / "S" / "smithjohn15", id="lower-case"),
            pytest.param("15", ROOT / "1" / "15", id="digit-only"),
            pytest.param("GarcíaMaría2", ROOT / "G" / "GarcíaMaría2", id="accents"),
            pytest.param("ßmith3", ROOT / "ß" / "ßmith3", id="sharp-s"),
        ],
    )
    def test_patient_dir(self, image_folder: str, expected: Path) -> None:
        assert patient_dir(ROOT, image_folder) == expected


class TestThumbnailPath:
    @pytest.mark.parametrize(
        ("image_folder", "file_name", "expected"),
        [
            pytest.param(
                "SmithJohn15",
                "x.jpg",
                ROOT / "S" / "SmithJohn15" / "Thumbnails" / "x.jpg",
                id="plain",
            ),
            pytest.param(
                "15", "scan 1.png", ROOT / "1" / "15" / "Thumbnails" / "scan 1.png", id="digits"
            ),
            pytest.param(
                "ИвановИван9",
                "снимок.jpg",
                ROOT / "И" / "ИвановИван9" / "Thumbnails" / "снимок.jpg",
                id="cyrillic",
            ),
        ],
    )
    def test_thumbnail_path(self, image_folder: str, file_name: str, expected: Path) -> None:
        assert thumbnail_path(ROOT, image_folder, file_name) == expected
