"""Thumbnail jobs: Open Dental's freshness rule, safe paths, and one job carried out."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from structlog.testing import capture_logs

from atoz_watcher.db.queries import DocumentFile
from atoz_watcher.imaging.jobs import (
    Outcome,
    ThumbJob,
    carry_out,
    is_fresh,
    job_for,
    job_for_document,
    thumbnail_of,
)
from atoz_watcher.imaging.render import Adjust, Renderer

NOON = datetime(2026, 11, 28, 12, 0, 0)


class TestIsFresh:
    @pytest.mark.parametrize(
        ("thumbnail_mtime", "fresh"),
        [
            (None, False),  # missing: always built
            (NOON - timedelta(seconds=1), False),  # older than the document: rebuilt
            (NOON, False),  # not later: rebuilt
            (NOON + timedelta(microseconds=1), True),
            (NOON + timedelta(days=3), True),
        ],
    )
    def test_fresh_only_while_newer_than_the_document(
        self, thumbnail_mtime: datetime | None, fresh: bool
    ) -> None:
        assert is_fresh(thumbnail_mtime, NOON) is fresh


def document(**changes: object) -> DocumentFile:
    values: dict[str, object] = {
        "doc_num": 7,
        "pat_num": 15,
        "file_name": "pano.jpg",
        "image_folder": "SmithJohn15",
        "lname": "Smith",
        "fname": "John",
        "stamp": NOON,
        "crop": (1, 2, 30, 40),
        "flip": True,
        "degrees": 90.0,
        "window": (10, 200),
    }
    values.update(changes)
    return DocumentFile(**values)  # type: ignore[arg-type]


class TestJobFor:
    def test_the_thumbnail_goes_beside_the_stored_file(self, tmp_path: Path) -> None:
        source = tmp_path / "S" / "SmithJohn15" / "SmithJohn7.png"

        job = job_for(source, stamp=NOON, pat_num=15, doc_num=7)

        assert job == ThumbJob(
            source=source,
            dest=tmp_path / "S" / "SmithJohn15" / "Thumbnails" / "SmithJohn7.png",
            stamp=NOON,
            pat_num=15,
            doc_num=7,
        )
        assert job.tree.root == tmp_path  # the A-to-Z root, three folders up

    @pytest.mark.parametrize("name", ["report.docx", "notes.txt", "scan"])
    def test_a_stored_file_that_is_no_image_gets_no_job(self, tmp_path: Path, name: str) -> None:
        assert job_for(tmp_path / "S" / "F" / name, stamp=NOON, pat_num=1, doc_num=2) is None


class TestJobForDocument:
    def test_paths_and_settings_come_from_the_row(self, tmp_path: Path) -> None:
        job = job_for_document(tmp_path, document())

        assert isinstance(job, ThumbJob)
        assert job.source == tmp_path / "S" / "SmithJohn15" / "pano.jpg"
        assert job.dest == tmp_path / "S" / "SmithJohn15" / "Thumbnails" / "pano.jpg"
        assert (job.pat_num, job.doc_num, job.stamp) == (15, 7, NOON)
        assert job.adjust == Adjust(crop=(1, 2, 30, 40), flip=True, degrees=90.0, window=(10, 200))

    def test_an_empty_image_folder_is_computed_as_open_dental_does(self, tmp_path: Path) -> None:
        job = job_for_document(tmp_path, document(image_folder=""))

        assert isinstance(job, ThumbJob)
        assert job.source == tmp_path / "S" / "SmithJohn15" / "pano.jpg"

    @pytest.mark.parametrize("name", ["report.docx", "notes.txt", "scan"])
    def test_files_that_are_no_image_get_no_job(self, tmp_path: Path, name: str) -> None:
        assert job_for_document(tmp_path, document(file_name=name)) is None

    @pytest.mark.parametrize(
        ("file_name", "image_folder"),
        [
            ("../../etc/x.jpg", "SmithJohn15"),
            ("a/b.jpg", "SmithJohn15"),
            ("a\\b.jpg", "SmithJohn15"),
            ("pano.jpg", ".."),
            ("pano.jpg", "../../tmp"),
        ],
    )
    def test_names_that_would_leave_the_root_are_refused(
        self, tmp_path: Path, file_name: str, image_folder: str
    ) -> None:
        job = job_for_document(tmp_path, document(file_name=file_name, image_folder=image_folder))

        assert isinstance(job, str)
        assert "unsafe" in job


def make_job(folder: Path, *, stamp: datetime, name: str = "pano.jpg") -> ThumbJob:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / name
    Image.new("RGB", (300, 200), (10, 120, 240)).save(source)
    return ThumbJob(source=source, dest=thumbnail_of(source), stamp=stamp, pat_num=1, doc_num=2)


def set_mtime(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


class TestCarryOut:
    def test_missing_thumbnail_is_built(self, tmp_path: Path) -> None:
        job = make_job(tmp_path, stamp=NOON)

        assert carry_out(job, Renderer()) is Outcome.MADE
        with Image.open(job.dest) as thumbnail:
            assert thumbnail.size == (100, 100)

    def test_thumbnail_newer_than_the_document_is_left_alone(self, tmp_path: Path) -> None:
        job = make_job(tmp_path, stamp=NOON)
        job.dest.parent.mkdir()
        job.dest.write_bytes(b"kept")
        set_mtime(job.dest, NOON + timedelta(minutes=5))

        assert carry_out(job, Renderer()) is Outcome.FRESH
        assert job.dest.read_bytes() == b"kept"

    def test_thumbnail_older_than_the_document_is_rebuilt(self, tmp_path: Path) -> None:
        job = make_job(tmp_path, stamp=NOON)
        job.dest.parent.mkdir()
        job.dest.write_bytes(b"stale")
        set_mtime(job.dest, NOON - timedelta(minutes=5))

        assert carry_out(job, Renderer()) is Outcome.MADE
        with Image.open(job.dest) as thumbnail:
            assert thumbnail.size == (100, 100)

    def test_force_rebuilds_a_fresh_thumbnail(self, tmp_path: Path) -> None:
        job = make_job(tmp_path, stamp=NOON)
        job.dest.parent.mkdir()
        job.dest.write_bytes(b"kept")
        set_mtime(job.dest, NOON + timedelta(minutes=5))

        assert carry_out(job, Renderer(), force=True) is Outcome.MADE
        assert job.dest.read_bytes() != b"kept"

    def test_a_forced_job_rebuilds_a_fresh_thumbnail(self, tmp_path: Path) -> None:
        made = make_job(tmp_path, stamp=NOON)
        job = job_for(made.source, stamp=NOON, pat_num=1, doc_num=2, force=True)
        assert job is not None
        job.dest.parent.mkdir()
        job.dest.write_bytes(b"an older file's")
        set_mtime(job.dest, NOON + timedelta(minutes=5))

        assert carry_out(job, Renderer()) is Outcome.MADE
        with Image.open(job.dest) as thumbnail:
            assert thumbnail.size == (100, 100)

    def test_damaged_file_fails_and_leaves_nothing(self, tmp_path: Path) -> None:
        job = make_job(tmp_path, stamp=NOON)
        job.source.write_bytes(job.source.read_bytes()[:200])

        assert carry_out(job, Renderer()) is Outcome.FAILED
        assert not job.dest.parent.exists() or list(job.dest.parent.iterdir()) == []

    def test_file_gone_is_missing(self, tmp_path: Path) -> None:
        job = make_job(tmp_path, stamp=NOON)
        job.source.unlink()

        assert carry_out(job, Renderer()) is Outcome.MISSING

    def test_unwritable_thumbnails_folder_fails_with_a_reason(self, tmp_path: Path) -> None:
        job = make_job(tmp_path, stamp=NOON)
        job.dest.parent.write_bytes(b"a file where the folder should be")

        with capture_logs() as logs:
            assert carry_out(job, Renderer()) is Outcome.FAILED

        (line,) = [entry for entry in logs if entry["event"] == "thumbnail.failed"]
        assert line["path"] == str(job.source)
        assert str(job.dest) in line["reason"]

    def test_damaged_file_gives_one_clear_log_line(self, tmp_path: Path) -> None:
        job = make_job(tmp_path, stamp=NOON)
        job.source.write_bytes(b"")

        with capture_logs() as logs:
            carry_out(job, Renderer())

        assert [(e["event"], e["log_level"], e["patnum"], e["docnum"]) for e in logs] == [
            ("thumbnail.failed", "warning", 1, 2)
        ]
        assert "not an image" in logs[0]["reason"]
