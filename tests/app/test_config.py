"""Settings: a TOML file, ``ATOZ_`` environment variables over it, errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from atoz_watcher.config.settings import load_settings
from atoz_watcher.errors import ConfigError

# Text that would mean a raw pydantic error leaked into the message.
PYDANTIC_NOISE = ("pydantic", "errors.pydantic.dev", "validation error", "input_value", "Traceback")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic-settings reads os.environ: no ATOZ_ variable of the caller may leak in."""
    for key in list(os.environ):
        if key.upper().startswith("ATOZ_"):
            monkeypatch.delenv(key)


def write_config(directory: Path, text: str, name: str = "atoz.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(config_file: Path | None, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(config_file, {}, **overrides)
    message = str(info.value)
    for noise in PYDANTIC_NOISE:
        assert noise not in message
    return message


FULL = """\
atoz_path = "/srv/OpenDentImages"
database_url = "mysql+pymysql://od:secret@db:3306/opendental"
storage = "InDatabase"
state_dir = "/var/lib/atoz-watcher"

[scan]
batch_size = 50
lock_timeout = 5
"""


class TestFileValues:
    def test_every_value_from_the_file(self, tmp_path: Path) -> None:
        settings = load_settings(write_config(tmp_path, FULL), {})
        assert settings.atoz_path == Path("/srv/OpenDentImages")
        assert settings.database_url.get_secret_value() == (
            "mysql+pymysql://od:secret@db:3306/opendental"
        )
        assert settings.db_url == "mysql+pymysql://od:secret@db:3306/opendental"
        assert settings.storage == "InDatabase"
        assert settings.state_dir == Path("/var/lib/atoz-watcher")
        assert settings.journal_dir == Path("/var/lib/atoz-watcher/journal")
        assert settings.scan.batch_size == 50
        assert settings.scan.lock_timeout == 5

    def test_defaults(self, tmp_path: Path) -> None:
        settings = load_settings(write_config(tmp_path, 'atoz_path = "/od"\n'), {})
        assert settings.atoz_path == Path("/od")
        assert settings.database_url.get_secret_value() == ""
        assert settings.storage == "LocalAtoZ"
        assert settings.scan.batch_size == 500
        assert settings.scan.lock_timeout == 60

    def test_default_db_url_is_sqlite_in_state_dir(self, tmp_path: Path) -> None:
        config = write_config(tmp_path, 'atoz_path = "/od"\nstate_dir = "/var/lib/atoz"\n')
        settings = load_settings(config, {})
        assert settings.db_url == "sqlite:////var/lib/atoz/atoz-watcher.sqlite3"
        assert settings.journal_dir == Path("/var/lib/atoz/journal")

    @pytest.mark.parametrize(
        ("state_dir", "expected"),
        [
            pytest.param("~/state", "state", id="tilde"),
            pytest.param("~", "", id="bare-tilde"),
        ],
    )
    def test_tilde_in_state_dir_is_expanded(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: str, expected: str
    ) -> None:
        home = tmp_path / "home"
        monkeypatch.setenv("HOME", str(home))
        config = write_config(tmp_path, f'atoz_path = "/od"\nstate_dir = "{state_dir}"\n')
        settings = load_settings(config, {})
        state = home / expected if expected else home
        assert settings.db_url == f"sqlite:///{state / 'atoz-watcher.sqlite3'}"
        assert settings.journal_dir == state / "journal"
        assert "~" not in settings.db_url

    def test_default_state_dir_is_under_home(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        settings = load_settings(None, {}, atoz_path="/od")
        state = tmp_path / ".local" / "state" / "atoz-watcher"
        assert settings.db_url == f"sqlite:///{state / 'atoz-watcher.sqlite3'}"
        assert settings.journal_dir == state / "journal"

    def test_password_stays_out_of_repr(self, tmp_path: Path) -> None:
        settings = load_settings(write_config(tmp_path, FULL), {})
        assert "secret" not in repr(settings)
        assert "secret" not in str(settings)

    def test_overrides_win_over_the_file(self, tmp_path: Path) -> None:
        settings = load_settings(write_config(tmp_path, FULL), {}, storage="LocalAtoZ")
        assert settings.storage == "LocalAtoZ"


class TestEnvironment:
    @pytest.mark.parametrize(
        ("variable", "value", "expected"),
        [
            pytest.param("ATOZ_PATH", "/mnt/od", ("atoz_path", Path("/mnt/od")), id="path"),
            pytest.param(
                "ATOZ_DATABASE_URL",
                "sqlite:////srv/x.db",
                ("db_url", "sqlite:////srv/x.db"),
                id="database-url",
            ),
            pytest.param("ATOZ_STORAGE", "LocalAtoZ", ("storage", "LocalAtoZ"), id="storage"),
            pytest.param(
                "ATOZ_STATE_DIR", "/srv/state", ("state_dir", Path("/srv/state")), id="state-dir"
            ),
        ],
    )
    def test_environment_wins_over_file(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        variable: str,
        value: str,
        expected: tuple[str, object],
    ) -> None:
        monkeypatch.setenv(variable, value)
        settings = load_settings(write_config(tmp_path, FULL), {})
        attribute, wanted = expected
        assert getattr(settings, attribute) == wanted

    def test_nested_scan_variable_wins_and_keeps_file_siblings(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ATOZ_SCAN__BATCH_SIZE", "7")
        settings = load_settings(write_config(tmp_path, FULL), {})
        assert settings.scan.batch_size == 7
        assert settings.scan.lock_timeout == 5  # from the file

    def test_environment_alone_is_enough(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ATOZ_PATH", "/mnt/od")
        settings = load_settings(None, {})
        assert settings.atoz_path == Path("/mnt/od")

    def test_bad_environment_value_names_the_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ATOZ_SCAN__BATCH_SIZE", "0")
        message = config_error(None, atoz_path="/od")
        assert "scan.batch_size" in message


class TestConfigFileChoice:
    def test_atoz_config_names_the_file(self, tmp_path: Path) -> None:
        config = write_config(tmp_path, FULL)
        settings = load_settings(None, {"ATOZ_CONFIG": str(config)})
        assert settings.atoz_path == Path("/srv/OpenDentImages")
        assert settings.scan.batch_size == 50

    def test_atoz_config_in_the_process_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The CLI hands os.environ over: ATOZ_CONFIG is then also an ATOZ_ variable.
        config = write_config(tmp_path, FULL)
        monkeypatch.setenv("ATOZ_CONFIG", str(config))
        settings = load_settings(None, os.environ)
        assert settings.scan.batch_size == 50

    def test_explicit_file_wins_over_atoz_config(self, tmp_path: Path) -> None:
        explicit = write_config(tmp_path, 'atoz_path = "/explicit"\n', name="a.toml")
        other = write_config(tmp_path, 'atoz_path = "/other"\n', name="b.toml")
        settings = load_settings(explicit, {"ATOZ_CONFIG": str(other)})
        assert settings.atoz_path == Path("/explicit")

    def test_empty_atoz_config_means_no_file(self) -> None:
        settings = load_settings(None, {"ATOZ_CONFIG": ""}, atoz_path="/od")
        assert settings.atoz_path == Path("/od")


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "key", "words"),
        [
            pytest.param(
                'atoz_path = "/od"\ncolour = "blue"\n',
                "colour",
                "unknown key",
                id="unknown-top-level",
            ),
            pytest.param(
                'atoz_path = "/od"\n[scan]\nbatch = 5\n',
                "scan.batch",
                "unknown key",
                id="unknown-scan-key",
            ),
            pytest.param(
                'atoz_path = "/od"\n[scan]\nbatch_size = 0\n',
                "scan.batch_size",
                "greater than 0",
                id="batch-size-zero",
            ),
            pytest.param(
                'atoz_path = "/od"\n[scan]\nlock_timeout = -1\n',
                "scan.lock_timeout",
                "greater than 0",
                id="lock-timeout-negative",
            ),
            pytest.param(
                'atoz_path = "/od"\n[scan]\nbatch_size = "many"\n',
                "scan.batch_size",
                "integer",
                id="batch-size-text",
            ),
            pytest.param(
                'atoz_path = "/od"\nstorage = "Dropbox"\n',
                "storage",
                "LocalAtoZ",
                id="storage-dropbox",
            ),
            pytest.param('atoz_path = "/od"\nscan = 5\n', "scan", "", id="scan-not-a-table"),
            pytest.param(
                'storage = "LocalAtoZ"\n', "atoz_path", "required", id="atoz-path-missing"
            ),
        ],
    )
    def test_message_names_the_key(self, tmp_path: Path, text: str, key: str, words: str) -> None:
        config = write_config(tmp_path, text)
        message = config_error(config)
        assert f"  {key}: " in message
        assert words in message
        assert str(config) in message

    def test_missing_atoz_path_without_file(self) -> None:
        message = config_error(None)
        assert "atoz_path" in message
        assert "required" in message

    def test_every_problem_is_listed(self, tmp_path: Path) -> None:
        config = write_config(tmp_path, 'storage = "Dropbox"\n[scan]\nbatch_size = 0\n')
        message = config_error(config)
        assert "  atoz_path: " in message
        assert "  storage: " in message
        assert "  scan.batch_size: " in message

    def test_missing_file(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.toml"
        message = config_error(missing)
        assert str(missing) in message
        assert "does not exist" in message

    def test_missing_file_named_by_atoz_config(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.toml"
        with pytest.raises(ConfigError, match=f"^ATOZ_CONFIG: config file {missing} does not"):
            load_settings(None, {"ATOZ_CONFIG": str(missing)})

    def test_file_is_a_directory(self, tmp_path: Path) -> None:
        message = config_error(tmp_path)
        assert "cannot be read" in message

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param('atoz_path = "/od\n', id="unterminated-string"),
            pytest.param("atoz_path = /od\n", id="bare-value"),
            pytest.param('atoz_path = "/od"\natoz_path = "/x"\n', id="duplicate-key"),
            pytest.param("[scan\n", id="broken-table"),
        ],
    )
    def test_invalid_toml(self, tmp_path: Path, text: str) -> None:
        config = write_config(tmp_path, text)
        message = config_error(config)
        assert "not valid TOML" in message
        assert str(config) in message


class TestHelpfulErrors:
    @pytest.mark.parametrize(
        ("text", "line"),
        [
            pytest.param(
                'atoz_path = "/od"\n[watcher]\nsettle_second = 1\n',
                "  watcher.settle_second: unknown key; did you mean `watcher.settle_seconds`?",
                id="typo",
            ),
            pytest.param(
                'atoz_path = "/od"\nsettle_seconds = 1\n',
                "  settle_seconds: unknown key; did you mean `watcher.settle_seconds`?",
                id="outside-its-section",
            ),
            pytest.param(
                'atoz_path = "/od"\n[scan]\npoll_interval = 1\n',
                "  scan.poll_interval: unknown key; did you mean `watcher.poll_interval`?",
                id="wrong-section",
            ),
            pytest.param(
                'atoz_path = "/od"\nflavour = "mint"\n',
                "  flavour: unknown key",
                id="nothing-close",
            ),
        ],
    )
    def test_an_unknown_key_gets_the_closest_known_one(
        self, tmp_path: Path, text: str, line: str
    ) -> None:
        message = config_error(write_config(tmp_path, text))
        assert line in message.splitlines()

    def test_a_bad_variable_is_named_not_the_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_config(tmp_path, 'atoz_path = "/od"\n[scan]\nbatch_size = 10\n')
        monkeypatch.setenv("ATOZ_SCAN__BATCH_SIZE", "0")
        message = config_error(config)
        assert message.splitlines() == [
            "configuration error:",
            "  ATOZ_SCAN__BATCH_SIZE (scan.batch_size): Input should be greater than 0",
        ]

    def test_an_unknown_variable_gets_the_closest_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ATOZ_WATCHER__SETTLE_SECOND", "1")
        message = config_error(None, atoz_path="/od")
        assert (
            "  ATOZ_WATCHER__SETTLE_SECOND (watcher.settle_second): unknown key; "
            "did you mean `ATOZ_WATCHER__SETTLE_SECONDS`?"
        ) in message.splitlines()

    def test_a_variable_that_is_not_json_is_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ATOZ_API__KEYS", "dev/cust")
        monkeypatch.setenv("ATOZ_API__PORT", "8080")
        message = config_error(None, atoz_path="/od")
        assert message.startswith("configuration error: ATOZ_API__KEYS: not valid JSON")
        assert "8080" not in message

    def test_a_file_error_and_a_variable_error_each_name_their_source(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_config(tmp_path, 'atoz_path = "/od"\nstorage = "Dropbox"\n')
        monkeypatch.setenv("ATOZ_METRICS__PORT", "99999")
        lines = config_error(config).splitlines()
        assert lines[0] == f"configuration error in {config}:"
        assert any(line.startswith("  storage: ") for line in lines)
        assert any(line.startswith("  ATOZ_METRICS__PORT (metrics.port): ") for line in lines)


def test_inbox_folders_and_their_categories(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        'atoz_path = "/srv/a"\n[inbox]\ndicom_match = "chart"\n'
        '[[inbox.folders]]\npath = "/srv/scans"\ncategory = "Forms"\n'
        '[[inbox.folders]]\npath = "/srv/xrays"\ncategory = 12\n'
        '[[inbox.folders]]\npath = "/srv/other"\n',
    )

    inbox = load_settings(config, {}).inbox

    assert [(f.path, f.category) for f in inbox.folders] == [
        (Path("/srv/scans"), "Forms"),
        (Path("/srv/xrays"), 12),
        (Path("/srv/other"), None),
    ]
    assert (inbox.keep_days, inbox.cover_sheets, inbox.tokens, inbox.dicom) == (
        30,
        True,
        True,
        True,
    )
    assert inbox.dicom_match == "chart"
    assert inbox.token_rule.route("PAT18_consent.pdf").pat_num == 18  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("(?P<patnum>[0-9]+", "not a valid regular expression"),
        ("(?P<who>[0-9]+)", "unknown group(s) who"),
        ("scan([0-9]+)", "names no patient"),
    ],
)
def test_a_bad_token_pattern_is_a_config_error_naming_the_key(
    tmp_path: Path, pattern: str, says: str
) -> None:
    config = write_config(
        tmp_path, f"atoz_path = \"/srv/a\"\n[inbox]\ntoken_pattern = '{pattern}'\n"
    )

    message = config_error(config)

    assert "inbox.token_pattern" in message
    assert says in message


def test_an_inbox_folder_needs_a_path_and_a_usable_category(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'atoz_path = "/srv/a"\n[[inbox.folders]]\ncategory = 0\n')

    message = config_error(config)

    assert "inbox.folders.0.path: required" in message
    assert "inbox.folders.0.category" in message


def test_ui_users_need_an_argon2_hash_and_the_error_names_the_user_not_the_value(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'atoz_path = "{tmp_path}"\n'
        "[ui]\nenabled = true\n"
        '[[ui.users]]\nname = "frontdesk"\npassword_hash = "hunter2-plain"\n'
    )

    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})

    message = str(caught.value)
    assert "'frontdesk'" in message
    assert "atoz-watcher hash-password" in message
    assert "hunter2" not in message


def test_ui_user_names_are_unique_and_not_empty(tmp_path: Path) -> None:
    digest = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    config = tmp_path / "config.toml"
    twice = f'[[ui.users]]\nname = "a"\npassword_hash = "{digest}"\n' * 2
    config.write_text(f'atoz_path = "{tmp_path}"\n{twice}')
    with pytest.raises(ConfigError, match="'a' is listed twice"):
        load_settings(config, {})
    config.write_text(
        f'atoz_path = "{tmp_path}"\n[[ui.users]]\nname = " "\npassword_hash = "{digest}"\n'
    )
    with pytest.raises(ConfigError, match="name cannot be empty"):
        load_settings(config, {})
