"""``atoz-watcher cover-sheet``: a printable cover sheet for one patient (and a category).

The patient and the category are looked up, and refused with a one-line error before any file
is written: no such patient, a deleted one, a category that is no visible image category or
whose name several share. The code on the sheet names the category by its DefNum (what the
inbox files under, whatever the category is renamed to later); the sheet shows its name.
"""

from __future__ import annotations

import io
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from sqlalchemy import Engine

from atoz_watcher.app.commands.common import EXIT_OK, require_tables
from atoz_watcher.db import queries
from atoz_watcher.documents.checks import PAT_STATUS_DELETED, visible_category
from atoz_watcher.errors import (
    ArgumentError,
    DeletedPatientError,
    NoSuchPatientError,
    OutputExistsError,
)
from atoz_watcher.rules.naming import ImageCategory
from atoz_watcher.system.fsops import rename_noreplace

# Letter: Open Dental's users are mostly in the US; A4 with --paper a4.
DEFAULT_PAPER: Final = "letter"
_UNSAFE_IN_NAME: Final = re.compile(r"[^\w]+")


@dataclass(frozen=True, slots=True)
class CoverRequest:
    """What the command was asked for, as parsed."""

    pat_num: int
    category: str | None = None
    out: Path | None = None
    paper: str = DEFAULT_PAPER
    force: bool = False


def run_cover_sheet(engine: Engine, request: CoverRequest, *, stdout: TextIO) -> int:
    """Write the cover sheet's PDF and print its path."""
    require_tables(engine)
    with engine.connect() as conn:
        card = queries.patient_card(conn, pat_num=request.pat_num)
        if card is None:
            raise NoSuchPatientError(request.pat_num)
        if card.pat_status == PAT_STATUS_DELETED:
            raise DeletedPatientError(request.pat_num)
        category = None if request.category is None else visible_category(conn, request.category)
    dest = request.out if request.out is not None else Path(default_name(card.pat_num, category))
    _check_destination(dest, force=request.force)

    # Pillow and zxing-cpp load here only (see the note in app.cli).
    from atoz_watcher.imaging.coversheet import (  # noqa: PLC0415
        PaperSize,
        sheet_for,
        write_cover_sheet,
    )

    sheet = sheet_for(card, category)
    pdf = io.BytesIO()
    write_cover_sheet(sheet, pdf, paper=PaperSize(request.paper))
    _write(dest, pdf.getvalue(), force=request.force)
    print(dest, file=stdout)
    return EXIT_OK


def default_name(pat_num: int, category: ImageCategory | None) -> str:
    """``cover-<PatNum>.pdf``, or ``cover-<PatNum>-<category>.pdf`` with the category's name
    reduced to letters, digits and dashes (its DefNum when nothing of the name is left)."""
    if category is None:
        return f"cover-{pat_num}.pdf"
    label = _UNSAFE_IN_NAME.sub("-", category.name).strip("-_").lower()
    return f"cover-{pat_num}-{label or category.def_num}.pdf"


def _check_destination(dest: Path, *, force: bool) -> None:
    """Refuse, before drawing anything, what the write would refuse."""
    if dest.is_dir():
        raise ArgumentError(f"--out {dest}: is a folder; give a file name")
    if not dest.parent.is_dir():
        raise ArgumentError(f"--out {dest}: the folder {dest.parent} does not exist")
    if not force and (dest.exists() or dest.is_symlink()):
        raise OutputExistsError(dest)


def _write(dest: Path, data: bytes, *, force: bool) -> None:
    """Write ``data`` to ``dest`` whole or not at all: to a file beside it, then renamed over
    it (``force``) or onto its name only while that is free."""
    temp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    # Made as any new file is (the umask applies), never over another file.
    handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        if force:
            temp.replace(dest)
        else:
            try:
                rename_noreplace(temp, dest)
            except FileExistsError:
                raise OutputExistsError(dest) from None
    finally:
        temp.unlink(missing_ok=True)
