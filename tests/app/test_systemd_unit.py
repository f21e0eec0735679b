"""systemd/atoz-watcher.service and its env file: the settings the service depends on."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD / "atoz-watcher.service"
API_UNIT = SYSTEMD / "atoz-watcher-api.service"
ENV_FILE = SYSTEMD / "atoz-watcher.env"
ATOZ_PATH = "/mnt/OpenDentImages"


def read_unit(unit: Path = UNIT) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    # systemd keys are case-sensitive ("User", not "user").
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text(encoding="utf-8"), source=str(unit))
    return parser


EXPECTED = {
    "Unit": {
        "After": "network-online.target mariadb.service",
        "Wants": "network-online.target",
        "RequiresMountsFor": ATOZ_PATH,
    },
    "Service": {
        "Type": "notify",
        "NotifyAccess": "main",
        "ExecStart": (
            "/opt/atoz-watcher/.venv/bin/atoz-watcher --config /etc/atoz-watcher/config.toml run"
        ),
        "Restart": "on-failure",
        "RestartSec": "5",
        "WatchdogSec": "30",
        "TimeoutStopSec": "15",
        "User": "atoz-watcher",
        "Group": "atoz-watcher",
        # The A-to-Z folder's group, and group write on what we create in it.
        "SupplementaryGroups": "opendental",
        "UMask": "0002",
        "StateDirectory": "atoz-watcher",
        "Environment": "ATOZ_STATE_DIR=/var/lib/atoz-watcher",
        "EnvironmentFile": "-/etc/atoz-watcher/atoz-watcher.env",
        "ProtectSystem": "strict",
        "ReadWritePaths": ATOZ_PATH,
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "LockPersonality": "yes",
    },
    "Install": {"WantedBy": "multi-user.target"},
}


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [(section, key, value) for section, keys in EXPECTED.items() for key, value in keys.items()],
)
def test_required_setting(section: str, key: str, value: str) -> None:
    unit = read_unit()
    assert unit.has_option(section, key), f"[{section}] {key}= is missing"
    assert unit.get(section, key) == value


@pytest.mark.parametrize("unit", [UNIT, API_UNIT], ids=lambda unit: unit.name)
def test_no_key_is_given_twice_in_a_section(unit: Path) -> None:
    # strict=False lets a repeated key through silently, keeping only the last value; systemd
    # would append or reset instead. None of ours should repeat.
    section = ""
    seen: set[tuple[str, str]] = set()
    for line in unit.read_text(encoding="utf-8").splitlines():
        if match := re.fullmatch(r"\[(\w+)\]", line.strip()):
            section = match.group(1)
        elif (key := re.match(r"(\w+)=", line)) is not None:
            assert (section, key.group(1)) not in seen, f"{key.group(1)}= repeated"
            seen.add((section, key.group(1)))


def test_env_file_is_only_comments() -> None:
    # A shipped value would override the administrator's config.toml.
    lines = ENV_FILE.read_text(encoding="utf-8").splitlines()
    assert all(not line.strip() or line.lstrip().startswith("#") for line in lines)
    assert any(line.startswith("#ATOZ_DATABASE_URL=mysql+pymysql://") for line in lines)
    assert "600" in ENV_FILE.read_text(encoding="utf-8")


def test_the_api_unit_runs_the_api_alone_with_the_same_settings() -> None:
    api = read_unit(API_UNIT)
    watcher = read_unit()

    assert api.get("Service", "ExecStart") == (
        "/opt/atoz-watcher/.venv/bin/atoz-watcher --config /etc/atoz-watcher/config.toml api"
    )
    # `api` sends no READY=1 and no watchdog pings: notify or a watchdog would kill it.
    assert api.get("Service", "Type") == "exec"
    assert not api.has_option("Service", "WatchdogSec")
    assert api.get("Service", "UMask") == "0002"
    for key in ("User", "Group", "EnvironmentFile", "Environment", "StateDirectory"):
        assert api.get("Service", key) == watcher.get("Service", key), key
    # Hardened as the watcher is; InDatabase needs no folder, so none is writable by default.
    for key in ("ProtectSystem", "NoNewPrivileges", "ProtectHome", "RestrictAddressFamilies"):
        assert api.get("Service", key) == watcher.get("Service", key), key
    assert not api.has_option("Service", "ReadWritePaths")
    assert "#ReadWritePaths=/mnt/OpenDentImages" in API_UNIT.read_text(encoding="utf-8")
    assert api.get("Install", "WantedBy") == "multi-user.target"


def test_env_file_says_it_is_not_for_a_shell() -> None:
    text = ENV_FILE.read_text(encoding="utf-8")
    assert "EnvironmentFile=" in text
    assert "no quotes" in text
