"""The fault-injection suite's switches.

Bounded by default (CI). ``--long`` (or ``ATOZ_FAULT_LONG=1``) runs the long mode: more kill
points, longer loads. The option is registered here, which pytest honours when this folder (or
a file in it) is named on the command line (``pytest tests/fault --long``); a bare ``pytest``
from the root does not load this conftest early enough to know ``--long``, so use the
environment variable there: ``ATOZ_FAULT_LONG=1 pytest``.

``ATOZ_FAULT_SEED=<n>`` replays a randomised run (each test prints the seed it used).
"""

from __future__ import annotations

import os
import random

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="fault suite: the long mode (same as ATOZ_FAULT_LONG=1)",
    )


def long_mode(config: pytest.Config) -> bool:
    """True under --long or ATOZ_FAULT_LONG=1."""
    try:
        option = bool(config.getoption("--long"))
    except ValueError:  # the option was not registered (conftest not loaded early)
        option = False
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
