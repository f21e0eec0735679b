"""Where Open Dental keeps a patient's files in the A-to-Z folder (pure functions)."""

from __future__ import annotations

from pathlib import Path

THUMBNAILS_DIR = "Thumbnails"

# Depth below the root: 1 = letter folder, 2 = patient folder, 3 = a file in a patient folder.
LETTER, PATIENT, FILE = 1, 2, 3


def folder_name(lname: str, fname: str, patnum: int) -> str:
    """Open Dental's computed patient folder name: the letters of LName+FName, then PatNum.

    Only Unicode letters are kept (case and accents as typed); digits, spaces, hyphens and
    apostrophes go. ``("Smith", "John", 15) -> "SmithJohn15"``; no letters at all -> ``"15"``.
    """
    letters = "".join(ch for ch in lname + fname if ch.isalpha())
    return f"{letters}{patnum}"


def letter_folder(image_folder: str) -> str:
    """The letter folder a patient folder sits in: its first character, upper-cased.

    A character whose upper case is longer than one character (German sharp s) stays as it is,
    as .NET's per-character ``ToUpper`` leaves it.
    """
    if not image_folder:
        raise ValueError("a patient folder name cannot be empty")
    first = image_folder[0]
    upper = first.upper()
    return upper if len(upper) == 1 else first


def patient_dir(root: Path, image_folder: str) -> Path:
    """``<root>/<Letter>/<ImageFolder>``."""
    return root / letter_folder(image_folder) / image_folder


def thumbnail_path(root: Path, image_folder: str, file_name: str) -> Path:
    """``<patient folder>/Thumbnails/<FileName>``."""
    return patient_dir(root, image_folder) / THUMBNAILS_DIR / file_name
