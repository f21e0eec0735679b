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

import pytest


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
