"""Backfill (`atoz-watcher thumbnails`): missing or stale thumbnails of registered documents,
on every database."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from atoz_watcher.imaging.backfill import Backfill
from atoz_watcher.imaging.jobs import Outcome
from atoz_watcher.imaging.render import Renderer
from tests.support.processes import run
from tests.support.worlds import World


def image(path: Path, size: tuple[int, int] = (320, 200)) -> Path:
    Image.new("RGB", size, (200, 40, 40)).save(path)
    return path


def backfill(world: World) -> Backfill:
    return Backfill(world.engine, Renderer(), world.root, workers=2, page=2)


def thumbnails(folder: Path) -> list[str]:
    directory = folder / "Thumbnails"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def set_stamp(world: World, doc_num: int, when: datetime) -> None:
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE document SET DateTStamp = :w WHERE DocNum = :d"), {"w": when, "d": doc_num}
        )


def test_builds_missing_thumbnails_of_registered_images(world: World) -> None:
    category = world.add_category("X-Rays", order=0)
    smith = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    for name in ("pano.jpg", "bite.png", "chart.gif"):
        image(folder / name)
        world.add_document(smith, name, category)
    (folder / "letter.txt").write_text("not an image")
    world.add_document(smith, "letter.txt", category)
    world.add_document(smith, "gone.jpg", category)  # the row's file is not there

    summary = backfill(world).run()

    assert thumbnails(folder) == ["bite.png", "chart.gif", "pano.jpg"]
    for name in thumbnails(folder):
        with Image.open(folder / "Thumbnails" / name) as thumbnail:
            assert thumbnail.size == (100, 100)
    assert summary.documents == 5
    assert summary.outcomes[Outcome.MADE] == 3
    assert summary.outcomes[Outcome.MISSING] == 1
    assert summary.not_images == 1


def test_fresh_thumbnails_are_left_alone_and_stale_ones_rebuilt(world: World) -> None:
    category = world.add_category("X-Rays", order=0)
    smith = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    kept_doc = world.add_document(smith, image(folder / "kept.jpg").name, category)
    stale_doc = world.add_document(smith, image(folder / "stale.jpg").name, category)
    backfill(world).run()
    kept, stale = folder / "Thumbnails" / "kept.jpg", folder / "Thumbnails" / "stale.jpg"
    before = kept.stat().st_mtime_ns
    # Open Dental changed the second document (rotated it, say) after its thumbnail was made.
    set_stamp(world, stale_doc, datetime.now() + timedelta(hours=1))
    set_stamp(world, kept_doc, datetime.now() - timedelta(hours=1))
    stale_before = stale.stat().st_mtime_ns

    summary = backfill(world).run()

    assert summary.outcomes == {Outcome.FRESH: 1, Outcome.MADE: 1}
    assert kept.stat().st_mtime_ns == before
    assert stale.stat().st_mtime_ns > stale_before


def test_image_settings_apply_before_scaling(world: World) -> None:
    category = world.add_category("X-Rays", order=0)
    smith = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    image(folder / "wide.png", size=(400, 100))
    world.add_document(smith, "wide.png", category, DegreesRotated=90)

    backfill(world).run()

    with Image.open(folder / "Thumbnails" / "wide.png") as thumbnail:
        left, top, right, bottom = thumbnail.getchannel("A").getbbox() or (0, 0, 0, 0)
    assert (right - left, bottom - top) == (25, 100)  # turned upright: portrait


def test_unsafe_names_in_the_database_write_nothing_outside_the_root(world: World) -> None:
    category = world.add_category("X-Rays", order=0)
    evil = world.add_patient("Evil", "Eve", "..")
    image(world.root.parent / "outside.jpg")
    world.add_document(evil, "../../outside.jpg", category)

    summary = backfill(world).run()

    assert len(summary.unsafe) == 1
    assert not (world.root.parent / "Thumbnails").exists()
    assert summary.outcomes[Outcome.MADE] == 0


@pytest.mark.process
def test_thumbnails_command_with_patient_and_force(world: World) -> None:
    category = world.add_category("X-Rays", order=0)
    smith = world.add_patient("Smith", "John", "SmithJohn1")
    jones = world.add_patient("Jones", "Ann", "JonesAnn2")
    smith_folder, jones_folder = world.folder("SmithJohn1"), world.folder("JonesAnn2")
    world.add_document(smith, image(smith_folder / "a.jpg").name, category)
    world.add_document(jones, image(jones_folder / "b.jpg").name, category)
    (smith_folder / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    world.add_document(smith, "bad.jpg", category)
    env = world.cli_env()

    first = run(env, "thumbnails", "--patient", str(smith))

    assert first.returncode == 0, first.stderr
    assert "thumbnails made: 1" in first.stdout
    assert "failed: 1" in first.stdout
    assert str(smith_folder / "bad.jpg") in first.stdout
    assert thumbnails(smith_folder) == ["a.jpg"]
    assert thumbnails(jones_folder) == []

    again = run(env, "thumbnails")
    assert "thumbnails made: 1" in again.stdout  # Jones's; Smith's is fresh
    assert "already fresh: 1" in again.stdout

    forced = run(env, "thumbnails", "--force")
    assert "thumbnails made: 2" in forced.stdout
    assert "already fresh: 0" in forced.stdout


@pytest.mark.process
def test_thumbnails_command_refuses_in_database_storage(world: World) -> None:
    env = {**world.cli_env(), "ATOZ_STORAGE": "InDatabase"}

    result = run(env, "thumbnails")

    assert result.returncode == 2
    assert "InDatabase" in result.stderr
    assert list(world.root.iterdir()) == []


def test_changed_since_limits_the_pass_to_recent_documents(world: World) -> None:
    category = world.add_category("X-Rays", order=0)
    smith = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    old = world.add_document(smith, image(folder / "old.jpg").name, category)
    world.add_document(smith, image(folder / "new.jpg").name, category)
    set_stamp(world, old, datetime.now() - timedelta(days=30))

    summary = backfill(world).run(changed_since=datetime.now() - timedelta(days=2))

    assert thumbnails(folder) == ["new.jpg"]
    assert summary.documents == 1
