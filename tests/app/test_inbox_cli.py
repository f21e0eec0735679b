"""`atoz-watcher inbox list` / `inbox assign`, the inbox lines of `check`, and the demo's batch.

In-process through ``cli.main`` on every database kind, and once as a real process. An
unmatched file is made the way the daemon makes one: a file no rule routes, processed by an
``Inbox`` over the same folder.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine, text

from atoz_watcher.app.cli import main
from atoz_watcher.app.commands.demo import INBOX_NAME, run_demo
from atoz_watcher.app.demo import BATCH_NAME
from atoz_watcher.config.sections import InboxFolder, InboxSettings
from atoz_watcher.documents.writer import DocumentWriter
from atoz_watcher.imaging.coversheet import CoverSheet
from atoz_watcher.inbox import Inbox, Reason, Routed, Unmatched
from atoz_watcher.storage import LocalAtoZ
from tests.support import scans
from tests.support.processes import run
from tests.support.worlds import World

NO_ROUTE_WORDS = "no cover sheet, no PatNum in the name"


@dataclass(frozen=True)
class Answer:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Desk:
    world: World
    folder: Path
    forms: int
    patient: int

    def unmatched(self, name: str = "notes.txt") -> Path:
        """Drop ``name`` (no cover sheet, no token) and process it: its path in _Unmatched/."""
        (self.folder / name).write_text("a letter with no patient on it\n")
        outcome = self.inbox().process(self.folder / name)
        assert isinstance(outcome, Unmatched), outcome
        assert outcome.reason is Reason.NO_ROUTE
        return self.folder / "_Unmatched" / outcome.name

    def inbox(self) -> Inbox:
        storage = LocalAtoZ(self.world.root)
        return Inbox(
            self.world.engine,
            DocumentWriter(self.world.engine, storage, lock_timeout_s=30),
            storage,
            InboxSettings(folders=(InboxFolder(path=self.folder),)),
            atoz_root=self.world.root,
            lock_timeout_s=30,
        )


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """``main`` configures structlog for the captured stderr; put the previous set-up back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def inbox_env(world: World, folders: list[Path]) -> dict[str, str]:
    env = world.cli_env()
    env["ATOZ_INBOX__FOLDERS"] = json.dumps([{"path": str(f)} for f in folders])
    return env


@pytest.fixture
def desk(world: World, tmp_path: Path) -> Desk:
    folder = tmp_path / "scans"
    folder.mkdir()
    world.add_category("Documents", order=0)
    forms = world.add_category("Forms", order=1)
    patient = world.add_patient("Avery", "Anna")
    return Desk(world=world, folder=folder, forms=forms, patient=patient)


@pytest.fixture
def cli(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Answer]:
    """``cli(*args)``: `atoz-watcher <args>` in this process, on the desk's world and inbox."""
    for name in [key for key in os.environ if key.startswith("ATOZ_")]:
        monkeypatch.delenv(name)
    for name, value in inbox_env(desk.world, [desk.folder]).items():
        if name.startswith("ATOZ_"):
            monkeypatch.setenv(name, value)

    def call(*args: str) -> Answer:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Answer(code, captured.out, captured.err)

    return call


def test_list_shows_an_unmatched_file_and_why(desk: Desk, cli: Callable[..., Answer]) -> None:
    path = desk.unmatched()

    answer = cli("inbox", "list")

    assert answer.code == 0, answer.err
    lines = answer.out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: {NO_ROUTE_WORDS}")
    assert "came " in lines[0]
    assert lines[-1] == "1 unmatched file in 1 inbox folder"

    answer = cli("inbox", "list", "--json")
    assert answer.code == 0, answer.err
    listed = json.loads(answer.out)
    assert listed["count"] == 1
    (found,) = listed["files"]
    assert found["path"] == str(path)
    assert found["reason"] == "no-route"
    assert found["original"] == "notes.txt"
    assert found["when"] is not None


def test_list_names_the_pages_of_an_unmatched_part(desk: Desk, cli: Callable[..., Answer]) -> None:
    sheet = CoverSheet(pat_num=desk.patient, patient_name="Avery, Anna", birth_date=None)
    pages = scans.batch_pages([1, 2, scans.Cover(sheet), 3], dpi=150)
    scans.write_pdf(pages, desk.folder / "batch.pdf", dpi=150)
    outcome = desk.inbox().process(desk.folder / "batch.pdf")
    assert isinstance(outcome, Routed), outcome
    assert outcome.unmatched == (Reason.BEFORE_FIRST_COVER,)

    answer = cli("inbox", "list")

    assert answer.code == 0, answer.err
    first, count = answer.out.splitlines()
    assert first.startswith(
        f"{desk.folder}/_Unmatched/batch (pages 1-2).pdf: pages before the first"
    )
    assert first.endswith("; pages 1-2 of batch.pdf")
    assert count == "1 unmatched file in 1 inbox folder"
    (found,) = json.loads(cli("inbox", "list", "--json").out)["files"]
    assert (found["pages"], found["original"]) == ([1, 2], "batch.pdf")


def test_list_with_nothing_unmatched_says_zero(desk: Desk, cli: Callable[..., Answer]) -> None:
    del desk
    answer = cli("inbox", "list")
    assert (answer.code, answer.out) == (0, "0 unmatched files in 1 inbox folder\n")


def test_assign_files_it_to_the_patient(desk: Desk, cli: Callable[..., Answer]) -> None:
    path = desk.unmatched()

    answer = cli(
        "inbox", "assign", str(path), "--patient", str(desk.patient), "--category", "forms"
    )

    assert answer.code == 0, answer.err
    (row,) = desk.world.documents(desk.patient)
    assert int(row["DocCategory"]) == desk.forms
    assert answer.out.startswith(f"DocNum {row['DocNum']}: ")
    final = Path(answer.out.strip().split(": ", 1)[1])
    assert final.name == row["FileName"]
    assert final.read_text() == "a letter with no patient on it\n"
    assert not path.exists()
    assert [p.name for p in path.parent.iterdir()] == []  # the reason went with it
    assert cli("inbox", "list").out == "0 unmatched files in 1 inbox folder\n"


def test_assign_refuses_a_file_outside_unmatched(desk: Desk, cli: Callable[..., Answer]) -> None:
    waiting = desk.folder / "waiting.txt"
    waiting.write_text("not processed yet\n")
    elsewhere = desk.world.root.parent / "elsewhere.txt"
    elsewhere.write_text("not in an inbox\n")
    pat = str(desk.patient)

    for path in (waiting, elsewhere, desk.folder / "_Unmatched" / "missing.txt"):
        answer = cli("inbox", "assign", str(path), "--patient", pat)
        assert answer.code == 2, (path, answer)
        assert answer.err.startswith("atoz-watcher: ")
        assert len(answer.err.splitlines()) == 1
    assert waiting.read_text() == "not processed yet\n"
    assert elsewhere.read_text() == "not in an inbox\n"
    assert desk.world.documents() == []


def test_assign_refuses_unknown_and_deleted_patients(
    desk: Desk, cli: Callable[..., Answer]
) -> None:
    path = desk.unmatched()
    before = sorted(p.name for p in path.parent.iterdir())
    desk.world.delete_patient(desk.patient)

    for args in (
        ("--patient", "999999"),
        ("--patient", str(desk.patient)),  # deleted
        ("--patient", str(desk.world.add_patient("Brook", "Ben")), "--category", "Nope"),
    ):
        answer = cli("inbox", "assign", str(path), *args)
        assert answer.code == 2, (args, answer)
        assert len(answer.err.splitlines()) == 1, answer.err
        assert sorted(p.name for p in path.parent.iterdir()) == before
    assert desk.world.documents() == []
    assert NO_ROUTE_WORDS in cli("inbox", "list").out


def test_check_reports_each_inbox_folder(
    desk: Desk, cli: Callable[..., Answer], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = desk.folder.parent / "no-such-inbox"
    monkeypatch.setenv(
        "ATOZ_INBOX__FOLDERS", json.dumps([{"path": str(desk.folder)}, {"path": str(missing)}])
    )

    answer = cli("check")

    lines = {line.split(": ", 1)[0]: line for line in answer.out.splitlines()}
    assert lines[f"ok   inbox {desk.folder}"].endswith("a writable folder outside the A-to-Z root")
    assert lines[f"FAIL inbox {missing}"].startswith(f"FAIL inbox {missing}: does not exist")
    assert answer.code == 1


def test_list_and_assign_as_real_processes(desk: Desk) -> None:
    path = desk.unmatched()
    env = inbox_env(desk.world, [desk.folder])

    listed = run(env, "inbox", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].startswith(f"{path}: {NO_ROUTE_WORDS}")

    refused = run(env, "inbox", "assign", str(path), "--patient", "999999")
    assert refused.returncode == 2, refused.stderr
    assert path.exists()

    filed = run(env, "inbox", "assign", str(path), "--patient", str(desk.patient))
    assert filed.returncode == 0, filed.stderr
    assert len(desk.world.documents(desk.patient)) == 1
    assert not path.exists()


def test_the_demo_splits_its_batch_scan_into_two_documents(tmp_path: Path) -> None:
    out = io.StringIO()

    assert run_demo(tmp_path / "demo", out) == 0

    text_out = out.getvalue()
    assert "split by its cover sheets into 2 documents" in text_out
    engine = create_engine(f"sqlite:///{tmp_path / 'demo' / 'state' / 'atoz-watcher.sqlite3'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT PatNum FROM document WHERE FileName LIKE '%.pdf' ORDER BY DocNum")
            ).all()
    finally:
        engine.dispose()
    assert [r[0] for r in rows] == [1, 2]
    inbox = tmp_path / "demo" / INBOX_NAME
    assert (inbox / "_Done" / BATCH_NAME).is_file()
    assert not (inbox / BATCH_NAME).exists()
    assert not (inbox / "_Unmatched").exists() or not any((inbox / "_Unmatched").iterdir())


def test_check_refuses_a_link_inside_the_root(
    desk: Desk, cli: Callable[..., Answer], monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = desk.world.root / "Scans"
    inside.mkdir()
    linked = desk.world.root / "Linked"
    linked.symlink_to(desk.folder)
    other = desk.folder.parent / "other-scans"
    other.mkdir()
    own_link = other / "_Done"
    own_link.symlink_to(desk.folder.parent)
    folders = [{"path": str(p)} for p in (inside, linked, other)]
    monkeypatch.setenv("ATOZ_INBOX__FOLDERS", json.dumps(folders))

    lines = {line.split(": ", 1)[0]: line for line in cli("check").out.splitlines()}

    assert lines[f"ok   inbox {inside}"].endswith("a writable folder inside the A-to-Z root")
    assert lines[f"FAIL inbox {linked}"].endswith(
        f"{linked}: a link, which the inbox refuses; replace it with the real folder"
    )
    assert lines[f"FAIL inbox {other}"].startswith(f"FAIL inbox {other}: {own_link}: a link")


def test_check_refuses_a_linked_trash_folder(
    desk: Desk, cli: Callable[..., Answer], monkeypatch: pytest.MonkeyPatch
) -> None:
    trash = desk.folder / "_Trash"
    trash.symlink_to(desk.folder.parent)
    monkeypatch.setenv("ATOZ_INBOX__FOLDERS", json.dumps([{"path": str(desk.folder)}]))

    lines = {line.split(": ", 1)[0]: line for line in cli("check").out.splitlines()}

    assert lines[f"FAIL inbox {desk.folder}"].startswith(
        f"FAIL inbox {desk.folder}: {trash}: a link"
    )
