"""``Inbox.duplicates`` and ``Inbox.discard``: what the front-desk page lists besides the
unmatched files, and how staff throw one away (to ``_Trash/``, swept after keep_days), with
everything else refused and left where it is."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from atoz_watcher.inbox import Duplicate, Inbox, InboxError, Routed, Unmatched
from tests.inbox.conftest import Desk
from tests.support import scans


def _write(number: int, path: Path) -> Path:
    pages = scans.batch_pages([number], dpi=150, how=scans.Degradation())
    return scans.write_pdf(pages, path, dpi=150)


def _unmatched(desk: Desk, inbox: Inbox, name: str = "scan0042.pdf") -> Path:
    outcome = inbox.process(_write(42, desk.folder / name))
    assert isinstance(outcome, Unmatched)
    return desk.folder / "_Unmatched" / outcome.name


def _duplicate(desk: Desk, inbox: Inbox, name: str = "resent.pdf") -> Path:
    anna = desk.patients[0]
    first = _write(7, desk.folder / f"PAT{anna}.pdf")
    content = first.read_bytes()
    assert isinstance(inbox.process(first), Routed)
    resent = desk.folder / name
    resent.write_bytes(content)
    outcome = inbox.process(resent)
    assert isinstance(outcome, Duplicate)
    return desk.folder / "_Duplicates" / outcome.name


def test_duplicates_lists_the_files_in_duplicates(desk: Desk) -> None:
    inbox = desk.inbox()
    path = _duplicate(desk, inbox)
    _unmatched(desk, inbox)

    (listed,) = inbox.duplicates()

    assert listed.path == path
    assert listed.reason == "duplicate"
    assert listed.detail == f"PAT{desk.patients[0]}.pdf"  # the file in _Done/ it repeats
    assert listed.original == "resent.pdf"
    assert listed.when == desk.now
    assert [f.path.name for f in inbox.unmatched()] == ["scan0042.pdf"]


def test_discard_moves_an_unmatched_file_and_its_sidecar_to_the_trash(desk: Desk) -> None:
    inbox = desk.inbox()
    path = _unmatched(desk, inbox)
    content = path.read_bytes()

    trashed = inbox.discard(path)

    assert trashed == desk.folder / "_Trash" / "scan0042.pdf"
    assert trashed.read_bytes() == content
    assert desk.in_("_Unmatched") == []
    assert inbox.unmatched() == []
    facts = json.loads((desk.folder / "_Trash" / "scan0042.pdf.reason.json").read_text())
    assert (facts["reason"], facts["original"]) == ("no-route", "scan0042.pdf")
    assert facts["discarded_at"] == desk.now.isoformat()
    assert desk.world.documents() == []


def test_discard_takes_a_duplicate_and_keeps_both_of_two_same_names(desk: Desk) -> None:
    inbox = desk.inbox()
    unmatched = _unmatched(desk, inbox, "same.pdf")
    duplicate = _duplicate(desk, inbox, "same.pdf")

    first = inbox.discard(unmatched)
    second = inbox.discard(duplicate)

    assert (first.name, second.name) == ("same.pdf", "xsame.pdf")
    assert inbox.duplicates() == []
    assert desk.in_("_Trash") == sorted(
        ["same.pdf", "same.pdf.reason.json", "xsame.pdf", "xsame.pdf.reason.json"]
    )


def test_the_trash_is_swept_after_keep_days(desk: Desk) -> None:
    inbox = desk.inbox()
    inbox.discard(_unmatched(desk, inbox))

    assert inbox.sweep(desk.now + timedelta(days=29)) == 0
    assert desk.in_("_Trash") == ["scan0042.pdf", "scan0042.pdf.reason.json"]
    assert inbox.sweep(desk.now + timedelta(days=31)) == 1
    assert desk.in_("_Trash") == []


REFUSED = [
    # (what, how the path is made from the inbox folder, words of the reason)
    ("a file in the inbox itself", lambda f: f / "waiting.pdf", "_Unmatched/ or _Duplicates/"),
    ("a file in _Done/", lambda f: f / "_Done" / "kept.pdf", "_Unmatched/ or _Duplicates/"),
    ("a subfolder's file", lambda f: f / "_Unmatched" / "sub" / "a.pdf", "_Unmatched/ or"),
    ("the sidecar", lambda f: f / "_Unmatched" / "scan0042.pdf.reason.json", "not a file name"),
    ("a hidden name", lambda f: f / "_Unmatched" / ".scan0042.pdf", "not a file name"),
    ("a backslash", lambda f: f / "_Unmatched" / "..\\scan0042.pdf", "not a file name"),
    ("a way out", lambda f: f / "_Unmatched" / ".." / "waiting.pdf", "not in an inbox folder"),
    ("outside the inbox", lambda f: f.parent / "elsewhere.pdf", "not in an inbox folder"),
    ("a link", lambda f: f / "_Unmatched" / "link.pdf", "is a link"),
    ("a folder", lambda f: f / "_Unmatched" / "folder.pdf", "not a regular file"),
    ("a file that is gone", lambda f: f / "_Unmatched" / "gone.pdf", "does not exist"),
]


@pytest.mark.parametrize(("what", "where", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_discard_refuses_anything_else_and_moves_nothing(
    desk: Desk, what: str, where: Callable[[Path], Path], reason: str
) -> None:
    inbox = desk.inbox()
    kept = _unmatched(desk, inbox)
    folder = desk.folder
    (folder / "waiting.pdf").write_bytes(b"%PDF-")
    (folder.parent / "elsewhere.pdf").write_bytes(b"%PDF-")
    (folder / "_Unmatched" / "sub").mkdir()
    (folder / "_Unmatched" / "sub" / "a.pdf").write_bytes(b"%PDF-")
    (folder / "_Unmatched" / ".scan0042.pdf").write_bytes(b"%PDF-")
    (folder / "_Unmatched" / "..\\scan0042.pdf").write_bytes(b"%PDF-")
    (folder / "_Unmatched" / "folder.pdf").mkdir()
    (folder / "_Unmatched" / "link.pdf").symlink_to(folder / "waiting.pdf")
    before = sorted(str(p.relative_to(folder.parent)) for p in folder.parent.rglob("*"))

    with pytest.raises(InboxError, match=re.escape(reason)):
        inbox.discard(where(folder))

    after = sorted(str(p.relative_to(folder.parent)) for p in folder.parent.rglob("*"))
    assert after == before, what
    assert kept.exists()
    assert not (folder / "_Trash").exists() or desk.in_("_Trash") == []
