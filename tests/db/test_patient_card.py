"""``queries.patient_card`` and ``queries.image_category_by``: what a cover sheet shows, read
from a bare patient table and from Open Dental's own (Preferred, MiddleI, Birthdate)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from atoz_watcher.db import queries
from tests.support.worlds import World, make_world


@pytest.fixture
def opendental_world(tmp_path: Path) -> Iterator[World]:
    """MariaDB with Open Dental's own patient table (Preferred, MiddleI, Birthdate)."""
    yield from make_world("mariadb-opendental", tmp_path)


def test_a_bare_patient_table_gives_names_and_status(world: World) -> None:
    pat = world.add_patient("Smith", "John")
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE patient SET PatStatus = 3 WHERE PatNum = :p"), {"p": pat})

    with world.engine.connect() as conn:
        card = queries.patient_card(conn, pat_num=pat)
        missing = queries.patient_card(conn, pat_num=pat + 1)

    assert card == queries.PatientCard(
        pat_num=pat,
        lname="Smith",
        fname="John",
        preferred="",
        middle_initial="",
        birth_date=None,  # none set (Open Dental's 0001-01-01), or no column at all
        pat_status=3,
    )
    assert missing is None


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        ("1984-02-29", date(1984, 2, 29)),
        ("0001-01-01", None),  # Open Dental's "no date"
        ("1879-12-31", None),  # Open Dental shows no birth date before 1880
        ("0000-00-00", None),  # MySQL's zero date
    ],
)
def test_open_dentals_table_gives_preferred_middle_and_birth_date(
    opendental_world: World, stored: str, read: date | None
) -> None:
    world = opendental_world
    pat = world.add_patient("Smith", "John")
    with world.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE patient SET Preferred = ' Jack ', MiddleI = 'Q', Birthdate = :b "
                "WHERE PatNum = :p"
            ),
            {"b": stored, "p": pat},
        )

    with world.engine.connect() as conn:
        card = queries.patient_card(conn, pat_num=pat)

    assert card is not None
    assert (card.preferred, card.middle_initial, card.birth_date) == ("Jack", "Q", read)


def test_image_category_by_number_and_by_name(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    photos = world.add_category("Photos", order=1)
    hidden = world.add_category(" PHOTOS ", order=2, hidden=True)
    other = world.add_category("Photos", order=0, category=1)  # not an image category

    with world.engine.connect() as conn:
        by_number = queries.image_category_by(conn, key=misc)
        by_name = queries.image_category_by(conn, key="photos")
        not_image = queries.image_category_by(conn, key=other)
        unknown = queries.image_category_by(conn, key="Nope")

    assert [c.def_num for c in by_number] == [misc]
    assert [(c.def_num, c.is_hidden) for c in by_name] == [(photos, False), (hidden, True)]
    assert not_image == []
    assert unknown == []
