"""`atoz-watcher cover-sheet`: the PDF it writes (one page, the paper asked for, a code that
decodes to the patient and category, the name on the page) and what it refuses.

Run in-process through ``cli.main`` on every database kind, and once as a real process.

The PDF holds the page as one black-and-white image, no text layer (pypdfium2 extracts none:
checked below), so "the page shows the name" is checked on the pixels: where the sheet drawn
with the patient's name and one drawn with another name differ, the rendered page agrees with
the first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pypdfium2
import pytest
import structlog
from sqlalchemy import text

from atoz_watcher.app.cli import main
from atoz_watcher.imaging import codes
from atoz_watcher.imaging.coversheet import CoverSheet, PaperSize, draw_cover_sheet
from atoz_watcher.imaging.pages import iter_pages, page_count
from atoz_watcher.rules.cover import CoverCode
from tests.support.processes import run
from tests.support.worlds import World

MM_PER_POINT = 25.4 / 72
PAPER_MM = {"letter": (215.9, 279.4), "a4": (210.0, 297.0)}


@dataclass(frozen=True)
class Answer:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """``main`` configures structlog for the captured stderr; put the previous set-up back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder: where the default names land."""
    folder = tmp_path / "here"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def cover(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Answer]:
    """``cover(*args)``: `atoz-watcher cover-sheet <args>` in this process, on ``world``."""
    for name in [key for key in os.environ if key.startswith("ATOZ_")]:
        monkeypatch.delenv(name)
    for name, value in world.cli_env().items():
        if name.startswith("ATOZ_"):
            monkeypatch.setenv(name, value)

    def call(*args: str) -> Answer:
        capsys.readouterr()
        code = main(["cover-sheet", *args])
        captured = capsys.readouterr()
        return Answer(code, captured.out, captured.err)

    return call


def codes_on(path: Path) -> list[frozenset[CoverCode]]:
    """The cover codes on each page, read as the inbox reads them."""
    return [codes.find_codes(page) for page in iter_pages(path, dpi=codes.DPI, grayscale=True)]


def paper_mm(path: Path) -> tuple[float, float]:
    document = pypdfium2.PdfDocument(path)
    try:
        width, height = document[0].get_size()
    finally:
        document.close()
    return width * MM_PER_POINT, height * MM_PER_POINT


def text_layer(path: Path) -> str:
    document = pypdfium2.PdfDocument(path)
    try:
        return str(document[0].get_textpage().get_text_range())
    finally:
        document.close()


def agreement(path: Path, shown: CoverSheet, other: CoverSheet, paper: PaperSize) -> float:
    """Of the pixels where ``shown`` and ``other`` drawn differ, the share where the page
    rendered from ``path`` is as in ``shown``."""
    (page,) = iter_pages(path, dpi=300, grayscale=True)
    rendered = np.asarray(page) < 128
    expected = np.asarray(draw_cover_sheet(shown, paper=paper).convert("L")) < 128
    wrong = np.asarray(draw_cover_sheet(other, paper=paper).convert("L")) < 128
    height = min(rendered.shape[0], expected.shape[0])
    width = min(rendered.shape[1], expected.shape[1])
    rendered, expected, wrong = (a[:height, :width] for a in (rendered, expected, wrong))
    differ = expected != wrong
    assert differ.sum() > 0
    return float((rendered[differ] == expected[differ]).mean())


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_one_page_whose_code_names_the_patient_and_category(
    world: World, cover: Callable[..., Answer], here: Path, paper: str
) -> None:
    world.add_category("Miscellaneous", order=0)
    forms = world.add_category("Consent Forms", order=1)
    pat = world.add_patient("Smith", "John")

    answer = cover("--patient", str(pat), "--category", "consent FORMS", "--paper", paper)

    assert answer.code == 0, answer.err
    written = here / f"cover-{pat}-consent-forms.pdf"
    assert answer.out == f"cover-{pat}-consent-forms.pdf\n"
    assert sorted(here.iterdir()) == [written]
    assert page_count(written) == 1
    width, height = paper_mm(written)
    assert width == pytest.approx(PAPER_MM[paper][0], abs=0.5)
    assert height == pytest.approx(PAPER_MM[paper][1], abs=0.5)
    # The code carries the DefNum, whether the category was named or numbered.
    assert codes_on(written) == [frozenset({CoverCode(pat, forms)})]


def test_a_category_by_defnum_and_by_name_make_the_same_code(
    world: World, cover: Callable[..., Answer], here: Path
) -> None:
    world.add_category("Miscellaneous", order=0)
    xrays = world.add_category("X-Rays", order=1)
    pat = world.add_patient("Jones", "Amy")

    by_number = cover("--patient", str(pat), "--category", str(xrays), "--out", "number.pdf")
    by_name = cover("--patient", str(pat), "--category", "x-rays", "--out", "name.pdf")
    without = cover("--patient", str(pat))

    assert (by_number.code, by_name.code, without.code) == (0, 0, 0)
    assert codes_on(here / "number.pdf") == [frozenset({CoverCode(pat, xrays)})]
    assert codes_on(here / "name.pdf") == [frozenset({CoverCode(pat, xrays)})]
    assert without.out == f"cover-{pat}.pdf\n"
    assert codes_on(here / f"cover-{pat}.pdf") == [frozenset({CoverCode(pat)})]


def test_the_page_shows_the_name_birth_date_and_category(
    world: World, cover: Callable[..., Answer], here: Path
) -> None:
    photos = world.add_category("Photos", order=0)
    pat = world.add_patient("Müller", "Zoë")
    born: date | None = None
    name = "Müller, Zoë"
    if world.kind == "mariadb-opendental":  # Open Dental's patient table has these columns
        born = date(1984, 2, 29)
        name = "Müller, 'Zo' Zoë"
        with world.engine.begin() as conn:
            conn.execute(
                text("UPDATE patient SET Preferred = 'Zo', Birthdate = :b WHERE PatNum = :p"),
                {"b": born, "p": pat},
            )

    answer = cover("--patient", str(pat), "--category", "photos", "--paper", "a4")

    assert answer.code == 0, answer.err
    written = here / f"cover-{pat}-photos.pdf"
    assert text_layer(written) == ""  # no text to read back: the pixels are compared
    shown = CoverSheet(pat, name, born, photos, "Photos")
    others = [
        CoverSheet(pat, "Muller, Zoe", born, photos, "Photos"),  # the accents are drawn
        CoverSheet(pat, "Smith, John", born, photos, "Photos"),
        CoverSheet(pat, name, date(1999, 1, 1), photos, "Photos"),
        CoverSheet(pat, name, born, photos, "X-Rays"),
    ]
    for other in others:
        assert agreement(written, shown, other, PaperSize.A4) > 0.8


def test_a_patient_without_a_folder_or_categories_still_gets_a_sheet(
    world: World, cover: Callable[..., Answer], here: Path
) -> None:
    """The sheet needs no patient folder and, without --category, no image category."""
    pat = world.add_patient("Lone", "Ann")

    answer = cover("--patient", str(pat), "--out", "sheet.pdf")

    assert answer.code == 0, answer.err
    assert answer.out == "sheet.pdf\n"
    assert codes_on(here / "sheet.pdf") == [frozenset({CoverCode(pat)})]
    assert list(world.root.iterdir()) == []


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown patient", "--patient {missing}: there is no patient with PatNum {missing}"),
        (
            "deleted patient",
            "--patient {gone}: patient {gone} is deleted (PatStatus 4) and takes no documents",
        ),
        (
            "unknown category",
            "--category Nope: no image category (Category 18) has the name 'Nope'",
        ),
        ("unknown defnum", "--category 9999: no image category (Category 18) has DefNum 9999"),
        (
            "not an image category",
            "--category {other}: no image category (Category 18) has DefNum {other}",
        ),
        ("hidden category", "--category Old: the name 'Old' is a hidden image category"),
        (
            "ambiguous category",
            (
                "--category PHOTOS: the name 'PHOTOS' is shared by the image categories "
                "{photos}, {photos2}; give the DefNum"
            ),
        ),
        ("empty category", "--category '  ': give a DefNum or an image category's name"),
    ],
)
def test_a_refusal_is_one_line_exit_2_and_no_file(
    world: World, cover: Callable[..., Answer], here: Path, case: str, message: str
) -> None:
    world.add_category("Misc", order=0)
    photos = world.add_category("Photos", order=1)
    photos2 = world.add_category(" photos", order=2)
    world.add_category("Old", order=3, hidden=True)
    other = world.add_category("Not images", order=0, category=1)
    pat = world.add_patient("Smith", "John")
    gone = world.add_patient("Gone", "Gary")
    world.delete_patient(gone)
    missing = gone + 100
    args = {
        "unknown patient": ["--patient", str(missing)],
        "deleted patient": ["--patient", str(gone)],
        "unknown category": ["--patient", str(pat), "--category", "Nope"],
        "unknown defnum": ["--patient", str(pat), "--category", "9999"],
        "not an image category": ["--patient", str(pat), "--category", str(other)],
        "hidden category": ["--patient", str(pat), "--category", "Old"],
        "ambiguous category": ["--patient", str(pat), "--category", "PHOTOS"],
        "empty category": ["--patient", str(pat), "--category", "  "],
    }[case]

    answer = cover(*args)

    expected = message.format(
        missing=missing, gone=gone, other=other, photos=photos, photos2=photos2
    )
    assert (answer.code, answer.out, answer.err) == (2, "", f"atoz-watcher: {expected}\n")
    assert list(here.iterdir()) == []


def test_a_hidden_namesake_does_not_make_a_name_ambiguous(
    world: World, cover: Callable[..., Answer], here: Path
) -> None:
    world.add_category("Photos", order=0, hidden=True)
    visible = world.add_category("Photos", order=1)
    pat = world.add_patient("Smith", "John")

    answer = cover("--patient", str(pat), "--category", "Photos", "--out", "s.pdf")

    assert answer.code == 0, answer.err
    assert codes_on(here / "s.pdf") == [frozenset({CoverCode(pat, visible)})]


def test_an_existing_file_is_kept_unless_forced(
    world: World, cover: Callable[..., Answer], here: Path
) -> None:
    world.add_category("Misc", order=0)
    pat = world.add_patient("Smith", "John")
    target = here / f"cover-{pat}.pdf"
    target.write_bytes(b"somebody's file")

    refused = cover("--patient", str(pat))

    assert refused.code == 2
    assert refused.out == ""
    assert refused.err == (
        f"atoz-watcher: cover-{pat}.pdf exists; pass --force to replace it, or --out another file\n"
    )
    assert target.read_bytes() == b"somebody's file"
    assert sorted(here.iterdir()) == [target]  # no temporary file left either

    forced = cover("--patient", str(pat), "--force")

    assert forced.code == 0, forced.err
    assert codes_on(target) == [frozenset({CoverCode(pat)})]
    assert sorted(here.iterdir()) == [target]


def test_an_out_folder_that_does_not_exist_is_refused(
    world: World, cover: Callable[..., Answer], here: Path
) -> None:
    pat = world.add_patient("Smith", "John")

    missing = cover("--patient", str(pat), "--out", "nowhere/sheet.pdf")
    folder = cover("--patient", str(pat), "--out", str(here))

    assert (missing.code, missing.err) == (
        2,
        "atoz-watcher: --out nowhere/sheet.pdf: the folder nowhere does not exist\n",
    )
    assert (folder.code, folder.err) == (
        2,
        f"atoz-watcher: --out {here}: is a folder; give a file name\n",
    )
    assert list(here.iterdir()) == []


@pytest.mark.process
def test_the_command_as_a_process(bare_world: World, tmp_path: Path) -> None:
    world = bare_world
    forms = world.add_category("Forms", order=0)
    pat = world.add_patient("Smith", "John")
    out = tmp_path / "sheets" / "smith.pdf"
    out.parent.mkdir()

    done = run(
        world.cli_env(),
        "cover-sheet",
        "--patient",
        str(pat),
        "--category",
        "Forms",
        "--out",
        str(out),
    )
    unknown = run(
        world.cli_env(),
        "cover-sheet",
        "--patient",
        str(pat + 1),
        "--out",
        str(out.with_name("x.pdf")),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n"
    assert done.stderr == ""
    assert page_count(out) == 1
    assert paper_mm(out) == pytest.approx(PAPER_MM["letter"], abs=0.5)  # the default paper
    assert codes_on(out) == [frozenset({CoverCode(pat, forms)})]
    assert unknown.returncode == 2
    assert unknown.stdout == ""
    assert (
        unknown.stderr
        == f"atoz-watcher: --patient {pat + 1}: there is no patient with PatNum {pat + 1}\n"
    )
    assert sorted(out.parent.iterdir()) == [out]
