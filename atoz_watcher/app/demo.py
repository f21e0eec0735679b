"""``atoz-watcher demo``: a throw-away A-to-Z folder and SQLite database, imported end to end."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, inspect, select

from atoz_watcher.db import queries
from atoz_watcher.db.engine import add_default_categories, create_missing_tables
from atoz_watcher.db.models import Definition, Document, Patient
from atoz_watcher.rules.layout import folder_name, patient_dir

_PATIENTS = (
    # (LName, FName, ImageFolder already stored?)
    ("Smith", "John", False),
    ("García Núñez", "María", True),
    ("O'Brien-Lee", "Seán", False),
)


def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour, written by hand (Pillow belongs to the thumbnailer)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class DemoTree:
    root: Path
    patients: dict[str, int]  # folder name -> PatNum


def build_demo(engine: Engine, root: Path) -> DemoTree:
    """Create tables, categories, three patients and their folders with sample files."""
    create_missing_tables(engine)
    pat_table = Patient.__table__  # type: ignore[attr-defined]
    patients: dict[str, int] = {}
    with engine.begin() as conn:
        add_default_categories(conn)
        xrays = next(c for c in queries.image_categories(conn) if c.name == "X-Rays").def_num
        for lname, fname, stored in _PATIENTS:
            inserted = conn.execute(
                pat_table.insert().values(LName=lname, FName=fname, PatStatus=0, ImageFolder="")
            ).inserted_primary_key
            pat_num = int(inserted[0]) if inserted else 0
            name = folder_name(lname, fname, pat_num)
            if stored:
                conn.execute(
                    pat_table.update().where(pat_table.c.PatNum == pat_num).values(ImageFolder=name)
                )
            patients[name] = pat_num
    for index, name in enumerate(patients):
        folder = patient_dir(root, name)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "Thumbnails").mkdir(exist_ok=True)
        (folder / f"_{xrays}_bitewing.png").write_bytes(png_bytes(64, 48, (30, 30, 30 + index)))
        (folder / "intraoral photo.png").write_bytes(png_bytes(48, 64, (200, 120, 90)))
        (folder / "Thumbs.db").write_bytes(b"windows litter")
        (folder / ".DS_Store").write_bytes(b"mac litter")
    # Taken names: the prefixed file must become "xbitewing.png".
    first = patient_dir(root, next(iter(patients)))
    (first / f"_{xrays}_referral.png").write_bytes(png_bytes(10, 10, (255, 255, 255)))
    (first / "referral.png").write_bytes(png_bytes(10, 10, (0, 0, 255)))
    stray = root / "Z" / "Zed99999"
    stray.mkdir(parents=True, exist_ok=True)
    (stray / "orphan.png").write_bytes(png_bytes(8, 8, (0, 255, 0)))
    return DemoTree(root=root, patients=patients)


def existing_demo(engine: Engine, root: Path) -> DemoTree | None:
    """The demo an earlier run left in this database, or None when there is none yet."""
    if "patient" not in inspect(engine).get_table_names():
        return None
    pat = Patient.__table__  # type: ignore[attr-defined]
    query = select(pat.c.PatNum, pat.c.LName, pat.c.FName, pat.c.ImageFolder).order_by(pat.c.PatNum)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return None
    patients = {
        (image_folder or folder_name(lname, fname, pat_num)): pat_num
        for pat_num, lname, fname, image_folder in rows
    }
    return DemoTree(root=root, patients=patients)


def registered_rows(engine: Engine) -> list[tuple[int, int, str, str, int]]:
    """(DocNum, PatNum, FileName, category name, ImgType) of every document."""
    doc = Document.__table__  # type: ignore[attr-defined]
    cat = Definition.__table__  # type: ignore[attr-defined]
    query = (
        select(doc.c.DocNum, doc.c.PatNum, doc.c.FileName, cat.c.ItemName, doc.c.ImgType)
        .join(cat, cat.c.DefNum == doc.c.DocCategory)
        .order_by(doc.c.DocNum)
    )
    with engine.connect() as conn:
        return [(r[0], r[1], r[2], r[3], r[4]) for r in conn.execute(query)]


BATCH_NAME = "batch-scan.pdf"
# Content pages after each of the first two patients' cover sheets.
_BATCH_PAGES = (2, 1)


def drop_batch_scan(engine: Engine, inbox: Path, pat_nums: list[int]) -> Path:
    """Put a batch scan in ``inbox``: for each of the first two patients a cover sheet and a
    few pages, one PDF (what a scanner's feeder makes of a stack), written beside and renamed in."""
    # Pillow and zxing-cpp load here only (see the note in app.cli).
    from PIL import Image, ImageDraw  # noqa: PLC0415

    from atoz_watcher.imaging.coversheet import (  # noqa: PLC0415
        DPI,
        CoverSheet,
        PaperSize,
        draw_cover_sheet,
    )
    from atoz_watcher.rules.patient_names import name_lf  # noqa: PLC0415

    inbox.mkdir(parents=True, exist_ok=True)
    pages: list[Image.Image] = []
    size = PaperSize.LETTER.pixels
    with engine.connect() as conn:
        cards = [queries.patient_card(conn, pat_num=p) for p in pat_nums[: len(_BATCH_PAGES)]]
    for card, count in zip(cards, _BATCH_PAGES, strict=True):
        if card is None:
            continue
        name = name_lf(card.lname, card.fname, card.preferred, card.middle_initial)
        sheet = CoverSheet(pat_num=card.pat_num, patient_name=name, birth_date=card.birth_date)
        pages.append(draw_cover_sheet(sheet, paper=PaperSize.LETTER))
        for number in range(1, count + 1):
            page = Image.new("1", size, 1)
            draw = ImageDraw.Draw(page)
            draw.text((DPI, DPI), f"Sample page {number} of {count} for {name}", fill=0)
            draw.rectangle((DPI, 2 * DPI, size[0] - DPI, 2 * DPI + 40 * number), fill=0)
            pages.append(page)
    dest = inbox / BATCH_NAME
    temp = inbox / f".{BATCH_NAME}.tmp"
    pages[0].save(temp, format="PDF", save_all=True, append_images=pages[1:], resolution=DPI)
    temp.replace(dest)
    return dest
