"""A kill at any step of filing leaves every page still in the inbox or filed exactly once.

A kill is stood for by a BaseException raised from the filer's step hook (after each durable
step) or from inside ``DocumentWriter.create`` (leaving what a kill -9 there would leave: a
row without its file, a file without its row, or a committed row the manifest does not know).
Then a fresh Inbox catches up (``recover``, then every waiting file), and each page of the
batch is found exactly once: in one filed document, or in the one unmatched part.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date

import pytest

from atoz_watcher.db import queries
from atoz_watcher.documents.writer import DocumentWriter, NewDocument
from atoz_watcher.imaging.coversheet import CoverSheet
from atoz_watcher.inbox import Routed
from atoz_watcher.rules.layout import folder_name
from atoz_watcher.storage import LocalAtoZ, Spool
from tests.inbox.conftest import Desk, orphans
from tests.support import scans


class Kill(BaseException):
    """Stands for kill -9: no handler of ours catches a BaseException that is not ours."""


def _batch(desk: Desk) -> bytes:
    anna, ben, clara = desk.patients

    def cover(pat_num: int) -> scans.Cover:
        return scans.Cover(CoverSheet(pat_num, "Test Patient", date(1990, 5, 6)))

    items = [1, cover(anna), 2, 3, cover(ben), 4, cover(clara), 5, 6]
    path = desk.folder.parent / "batch-source.pdf"
    scans.write_pdf(scans.batch_pages(items, dpi=150), path, dpi=150)
    return path.read_bytes()


def _floor(desk: Desk) -> int:
    return max((row["DocNum"] for row in desk.world.documents()), default=0)


def _assert_each_page_once(desk: Desk, floor: int) -> None:
    anna, ben, clara = desk.patients
    assert desk.pages_of(anna, after=floor) == [[2, 3]]
    assert desk.pages_of(ben, after=floor) == [[4]]
    assert desk.pages_of(clara, after=floor) == [[5, 6]]
    inbox = desk.inbox()
    (waiting,) = inbox.unmatched()
    assert scans.page_numbers(waiting.path) == [1]
    assert desk.in_("_Work") == []
    assert desk.in_("_Done") == ["batch.pdf", "batch.pdf.done.json"]
    assert [p.name for p in desk.folder.iterdir() if p.is_file()] == []
    assert orphans(desk.world) == []
    assert all(row["FileName"] for row in desk.world.documents())


def _steps(desk: Desk, batch: bytes) -> list[str]:
    """The steps of one undisturbed run (which also checks that run)."""
    seen: list[str] = []
    floor = _floor(desk)
    (desk.folder / "batch.pdf").write_bytes(batch)
    desk.inbox(on_step=seen.append).process(desk.folder / "batch.pdf")
    _assert_each_page_once(desk, floor)
    return seen


def test_a_kill_at_every_step_leaves_each_page_filed_once(desk, tmp_path):
    batch = _batch(desk)
    steps = _steps(desk, batch)
    filing = ["part.filing", "part.created", "part.filed"]
    assert steps == [
        "claim.manifest",
        "claim.moved",
        "routed",
        "split.written",
        "split",
        "_Unmatched.sidecar",
        "part.unmatched",
        *filing * 3,
        "finishing",
        "_Done.sidecar",
        "done.moved",
    ]

    for at, name in enumerate(steps):
        here = dataclasses.replace(desk, folder=tmp_path / f"inbox-{at}", outcomes=[])
        here.folder.mkdir()
        source = here.folder / "batch.pdf"
        source.write_bytes(batch)
        floor = _floor(here)
        counter = itertools.count()

        def kill_at(step: str, at: int = at, counter=counter) -> None:
            if next(counter) == at:
                raise Kill(step)

        with pytest.raises(Kill):
            here.inbox(on_step=kill_at).process(source)

        here.inbox().catch_up()

        try:
            _assert_each_page_once(here, floor)
        except AssertionError as exc:
            raise AssertionError(f"killed at step {at} ({name}): {exc}") from exc


class DyingWriter(DocumentWriter):
    """A writer killed inside ``create`` once, leaving what a kill -9 there would leave."""

    def __init__(self, desk: Desk, leaves: str) -> None:
        super().__init__(desk.world.engine, LocalAtoZ(desk.world.root), lock_timeout_s=30)
        self._desk = desk
        self._leaves = leaves

    def create(self, new: NewDocument, data, *, now=None):
        assert isinstance(data, Spool)
        world = self._desk.world
        if self._leaves == "committed-row":
            super().create(new, data, now=now)
            raise Kill("after the commit")
        if self._leaves in {"row", "row-and-file"}:
            # MyISAM keeps the insert a kill interrupted: a row with no FileName yet.
            world._insert(
                "document",
                {
                    "PatNum": new.pat_num,
                    "Description": new.description,
                    "FileName": "",
                    "DocCategory": new.category or 0,
                    "Note": "",
                    "Signature": "",
                },
            )
        if self._leaves in {"file", "row-and-file", "file-registered"}:
            # The file renamed into the patient folder, the row never committed (InnoDB).
            with world.engine.connect() as conn:
                patient = queries.patient(conn, pat_num=new.pat_num)
            assert patient is not None
            folder = patient.image_folder or folder_name(
                patient.lname, patient.fname, patient.pat_num
            )
            target = world.root / folder[0].upper() / folder
            target.mkdir(parents=True, exist_ok=True)
            name = folder_name(patient.lname, patient.fname, 999) + new.extension
            (target / name).write_bytes(data.path.read_bytes())
            if self._leaves == "file-registered":
                # The daemon's registrar found that file before the inbox recovered.
                world.add_document(new.pat_num, name, new.category or 0)
                with world.engine.begin() as conn:
                    queries.adopt_folder(conn, pat_num=new.pat_num, folder=folder)
        raise Kill(self._leaves)


@pytest.mark.parametrize(
    "leaves", ["row", "file", "row-and-file", "file-registered", "committed-row"]
)
def test_a_kill_inside_the_writer_is_recovered(desk, leaves):
    batch = _batch(desk)
    source = desk.folder / "batch.pdf"
    source.write_bytes(batch)

    with pytest.raises(Kill):
        desk.inbox(writer=DyingWriter(desk, leaves)).process(source)
    if leaves == "file":
        assert orphans(desk.world) != []  # the test leaves what it says it leaves

    outcomes = desk.inbox().catch_up()

    assert len(outcomes) == 1
    _assert_each_page_once(desk, 0)


def test_a_file_claimed_by_a_killed_process_is_processed_again_by_name(desk):
    source = desk.folder / "batch.pdf"
    source.write_bytes(_batch(desk))

    def kill(step: str) -> None:
        if step == "claim.manifest":
            raise Kill(step)

    with pytest.raises(Kill):
        desk.inbox(on_step=kill).process(source)
    assert source.exists()  # the manifest is written first: the file never left
    # A manifest being rewritten when the kill came: its temporary file, never the manifest.
    (desk.folder / "_Work" / ".0123abcd.tmp").write_bytes(b'{"half": ')

    outcome = desk.inbox().process(source)
    desk.inbox().recover()

    assert isinstance(outcome, Routed)

    _assert_each_page_once(desk, 0)
