"""schemathesis against our own OpenAPI schema: no 5xx, no response that breaks the schema.

A real server on loopback (SQLite), with a valid key on every request; at least 1000 generated
cases in all (the eight operations, MAX_EXAMPLES each), positive and negative.

The SFTP endpoints may only reach 127.0.0.1 (``[sftp] allow_hosts``), with an empty known_hosts
and a short connect timeout: a generated SftpAddress naming any other host is refused before any
DNS lookup or connection, and nothing generated ever leaves the machine.

Every check runs but one: positive_data_acceptance (a schema-valid request must not be a 400).
Open Dental's rules that a JSON schema cannot say (tooth-number ranges, real dates, strict
base64, a DocCategory that is an image category) are 400s, as they are in Open Dental.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import (
    GenerationConfig,
    ProjectConfig,
    ProjectsConfig,
    SchemathesisConfig,
)
from schemathesis.specs.openapi.checks import positive_data_acceptance

from atoz_watcher.app.wiring import build_api
from atoz_watcher.config.sections import SftpSettings
from atoz_watcher.config.settings import Settings
from atoz_watcher.db.engine import make_engine
from tests.support.api import AUTH, api_settings, serving
from tests.support.clinics import make_clinic
from tests.support.worlds import make_world

MAX_EXAMPLES = 150
OPERATIONS = 8
MINIMUM_CASES = 1000


def _our_schema() -> dict[str, object]:
    """The schema the server serves, built without a server or a database connection."""
    engine = make_engine("sqlite://")
    try:
        return build_api(Settings(atoz_path=Path("/nonexistent")), engine).openapi()
    finally:
        engine.dispose()


# The Authorization header is ours to send (below), not a parameter to generate or break.
CONFIG = SchemathesisConfig(
    projects=ProjectsConfig(
        default=ProjectConfig(generation=GenerationConfig(with_security_parameters=False))
    )
)
schema = schemathesis.openapi.from_dict(_our_schema(), config=CONFIG)


@pytest.fixture(scope="module")
def cases() -> Iterator[Counter[str]]:
    """Counts the cases run per operation; at the end, checks there were enough."""
    counts: Counter[str] = Counter()
    yield counts
    if len(counts) == OPERATIONS:  # the whole module ran, not a -k selection
        assert sum(counts.values()) >= MINIMUM_CASES, counts


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    for world in make_world("sqlite", tmp_path):
        clinic = make_clinic(world)
        world.add_patient("Jones", "Ann")
        world.add_document(clinic.pat, "scan.jpg", clinic.xrays)
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text("")
        settings = api_settings(world, max_upload_bytes=64 * 1024).model_copy(
            update={
                "sftp": SftpSettings(
                    allow_hosts=("127.0.0.1",),
                    known_hosts=known_hosts,
                    connect_timeout=0.5,
                    transfer_timeout=2,
                )
            }
        )
        with serving(settings, world) as client:
            yield str(client.base_url).rstrip("/")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_5xx_and_every_response_fits_the_schema(
    case: schemathesis.Case, base_url: str, cases: Counter[str]
) -> None:
    cases[case.operation.label] += 1  # unsupported-method probes count for their operation
    response = case.call_and_validate(
        base_url=base_url, headers=AUTH, excluded_checks=[positive_data_acceptance]
    )
    assert response.status_code < 500
