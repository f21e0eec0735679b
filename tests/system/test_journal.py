"""The intent journal: entries written durably, read back in order, removed when done."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from atoz_watcher.system.journal import Intent, Journal, JournalEntry


def intent(src: str, dst: str, *, pat_num: int = 15, category: int = 12) -> Intent:
    return Intent(
        pat_num=pat_num,
        folder=f"/srv/OpenDentImages/S/SmithJohn{pat_num}",
        src=src,
        dst=dst,
        category=category,
        img_type=0,
        inode=4242,
    )


BATCHES = [
    pytest.param([intent("_12_x.jpg", "x.jpg")], id="one"),
    pytest.param(
        [
            intent("_12_García.jpg", "García.jpg"),
            intent("_7_снимок.dcm", "снимок.dcm", category=7),
            intent("__王小明.png", "x王小明.png", pat_num=9),
        ],
        id="non-ascii",
    ),
    pytest.param([intent("_3_a b'c.jpg", "a b'c.jpg")], id="quote-space"),
    pytest.param([], id="empty"),
]


class TestRoundTrip:
    @pytest.mark.parametrize("intents", BATCHES)
    def test_write_then_pending(self, tmp_path: Path, intents: list[Intent]) -> None:
        journal = Journal(tmp_path / "journal")
        entry = journal.write(intents)
        assert entry.intents == tuple(intents)
        assert entry.path.parent == tmp_path / "journal"
        assert list(journal.pending()) == [JournalEntry(path=entry.path, intents=tuple(intents))]

    @pytest.mark.parametrize("intents", BATCHES)
    def test_remove(self, tmp_path: Path, intents: list[Intent]) -> None:
        journal = Journal(tmp_path / "journal")
        entry = journal.write(intents)
        journal.remove(entry)
        assert not entry.path.exists()
        assert list(journal.pending()) == []

    def test_names_are_stored_as_utf8_text(self, tmp_path: Path) -> None:
        journal = Journal(tmp_path)
        entry = journal.write([intent("_12_García.jpg", "García.jpg")])
        raw = entry.path.read_bytes()
        assert "García.jpg".encode() in raw
        assert json.loads(raw.decode("utf-8"))[0]["dst"] == "García.jpg"

    def test_a_fresh_journal_reads_what_another_wrote(self, tmp_path: Path) -> None:
        # Recovery after a crash: a new process, a new Journal object, the same folder.
        entry = Journal(tmp_path).write([intent("_12_x.jpg", "x.jpg")])
        assert list(Journal(tmp_path).pending()) == [entry]

    def test_removing_twice_is_harmless(self, tmp_path: Path) -> None:
        journal = Journal(tmp_path)
        entry = journal.write([intent("_12_x.jpg", "x.jpg")])
        journal.remove(entry)
        journal.remove(entry)
        assert list(journal.pending()) == []

    def test_removes_only_its_entry(self, tmp_path: Path) -> None:
        journal = Journal(tmp_path)
        first = journal.write([intent("_12_a.jpg", "a.jpg")])
        second = journal.write([intent("_12_b.jpg", "b.jpg")])
        journal.remove(first)
        assert list(journal.pending()) == [second]


class TestReplacing:
    def test_rewrites_the_same_file(self, tmp_path: Path) -> None:
        journal = Journal(tmp_path)
        first = journal.write([intent("_12_x.jpg", "x.jpg"), intent("_12_y.jpg", "y.jpg")])
        changed = (intent("_12_x.jpg", "xx.jpg"), intent("_12_y.jpg", "y.jpg"))
        second = journal.write(changed, replacing=first)
        assert second.path == first.path
        assert second.intents == changed
        assert list(journal.pending()) == [JournalEntry(path=first.path, intents=changed)]
        assert [p.name for p in tmp_path.iterdir()] == [first.path.name]

    def test_new_entries_get_new_files(self, tmp_path: Path) -> None:
        journal = Journal(tmp_path)
        first = journal.write([intent("_12_x.jpg", "x.jpg")])
        second = journal.write([intent("_12_x.jpg", "x.jpg")])
        assert first.path != second.path
        assert len(list(journal.pending())) == 2


class TestPending:
    def test_missing_directory_yields_nothing(self, tmp_path: Path) -> None:
        journal = Journal(tmp_path / "never-created")
        assert list(journal.pending()) == []
        assert not (tmp_path / "never-created").exists()

    def test_empty_directory_yields_nothing(self, tmp_path: Path) -> None:
        assert list(Journal(tmp_path).pending()) == []

    def test_ignores_files_that_are_not_entries(self, tmp_path: Path) -> None:
        journal = Journal(tmp_path)
        entry = journal.write([intent("_12_x.jpg", "x.jpg")])
        (tmp_path / ".0123.json.tmp").write_text("[{", encoding="utf-8")  # a torn temp file
        (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
        assert list(journal.pending()) == [entry]

    @pytest.mark.parametrize(
        "ages",
        [
            pytest.param((3, 1, 2), id="middle-oldest"),
            pytest.param((1, 2, 3), id="written-order"),
            pytest.param((3, 2, 1), id="reverse"),
        ],
    )
    def test_oldest_first(self, tmp_path: Path, ages: tuple[int, int, int]) -> None:
        """``ages`` gives each written entry's modification time in seconds since 2026-01-01;
        the entry with the smallest comes first, whatever the write or file-name order."""
        journal = Journal(tmp_path)
        entries = [journal.write([intent(f"_12_{n}.jpg", f"{n}.jpg")]) for n in range(3)]
        base = 1_767_225_600 * 10**9
        for entry, age in zip(entries, ages, strict=True):
            os.utime(entry.path, ns=(base + age * 10**9, base + age * 10**9))
        by_age = [entry for _, entry in sorted(zip(ages, entries, strict=True))]
        assert list(journal.pending()) == by_age
