"""The fault-injection suite's switches.

Bounded by default (CI). ``--long`` (or ``ATOZ_FAULT_LONG=1``) runs the long mode: more kill
points, longer loads. The option is registered in tests/conftest.py, so it works from the root
(``pytest --long``) as well as with this folder or a file in it named (``pytest --long
tests/fault``); ``long_mode`` here reads both spellings.

``ATOZ_FAULT_SEED=<n>`` replays a randomised run (each test prints the seed it used).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

HERE = Path(__file__).parent
LONG_TIMEOUT_S = 3600  # the long load alone runs 600 s per database, and more kill points


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``fault``: the fast lane (``-m "not fault ..."``) leaves
    them out. In the long mode they run for minutes by design (10 minutes of load, 250 kill
    points per database): pytest-timeout's limit is raised for them alone. pytest hands every
    conftest the whole session's items: only ours are marked."""
    long = long_mode(config)
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.fault)
            if long:
                item.add_marker(pytest.mark.timeout(LONG_TIMEOUT_S))


def long_mode(config: pytest.Config) -> bool:
    """True under ``--long`` or ``ATOZ_FAULT_LONG=1`` (any value but empty or 0)."""
    option = bool(config.getoption("--long", default=False))
    return option or os.environ.get("ATOZ_FAULT_LONG", "") not in ("", "0")


@pytest.fixture
def fault_long(request: pytest.FixtureRequest) -> bool:
    """True in the long mode (``--long`` or ``ATOZ_FAULT_LONG=1``)."""
    return long_mode(request.config)


@pytest.fixture
def fault_seed() -> int:
    """The seed of this test's random choices: ATOZ_FAULT_SEED, else a fresh one (printed)."""
    raw = os.environ.get("ATOZ_FAULT_SEED")
    seed = int(raw) if raw else random.SystemRandom().randrange(2**32)
    print(f"fault seed: {seed} (rerun with ATOZ_FAULT_SEED={seed})")  # noqa: T201
    return seed
