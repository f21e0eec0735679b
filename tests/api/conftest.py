"""The clinic the API tests work in (tests/support/clinics.py), on each database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clinics import Clinic, make_clinic
from tests.support.worlds import World, make_world


@pytest.fixture
def clinic(world: World) -> Clinic:
    """A clinic on SQLite, MariaDB and MariaDB with Open Dental's own schema."""
    return make_clinic(world)


@pytest.fixture
def sqlite_clinic(tmp_path: Path) -> Iterator[Clinic]:
    """The same on SQLite only, for the many small error cases."""
    for world in make_world("sqlite", tmp_path):
        yield make_clinic(world)
