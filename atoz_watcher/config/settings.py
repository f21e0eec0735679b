"""Settings: a TOML file overridden by ``ATOZ_`` environment variables. No side effects.

Only ``atoz_watcher.app`` imports this module: it builds Settings once, at the edge, and hands
the lower rooms their sections (``config.sections``) or plain values.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from atoz_watcher.config.sections import (
    ApiSettings,
    InboxSettings,
    MaterializerSettings,
    MetricsSettings,
    ScanSettings,
    SftpSettings,
    ThumbnailSettings,
    UiSettings,
    WatcherSettings,
)
from atoz_watcher.errors import ConfigError

ENV_PREFIX = "ATOZ_"
DEFAULT_STATE_DIR = Path("~/.local/state/atoz-watcher")
SQLITE_FILE_NAME = "atoz-watcher.sqlite3"


class Settings(BaseSettings):
    """Everything atoz-watcher is told; built once, at the edge, and passed down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    # The A-to-Z root (Open Dental's DocPath). Env: ATOZ_PATH.
    atoz_path: Path = Field(validation_alias=AliasChoices("atoz_path", "ATOZ_PATH"))
    # SQLAlchemy URL. Empty means a SQLite file in state_dir; Open Dental's own database is
    # "mysql+pymysql://user:password@host:3306/opendental". Secret: it holds the password, and
    # a SecretStr never shows it in a repr or a log line.
    database_url: SecretStr = SecretStr("")
    # Open Dental's AtoZfolderUsed: LocalAtoZ (files in the folder) or InDatabase.
    storage: Literal["LocalAtoZ", "InDatabase"] = "LocalAtoZ"
    # Where atoz-watcher keeps its own state (the intent journal, the default SQLite file).
    state_dir: Path = DEFAULT_STATE_DIR
    scan: ScanSettings = ScanSettings()
    watcher: WatcherSettings = WatcherSettings()
    metrics: MetricsSettings = MetricsSettings()
    thumbnails: ThumbnailSettings = ThumbnailSettings()
    api: ApiSettings = ApiSettings()
    materializer: MaterializerSettings = MaterializerSettings()
    sftp: SftpSettings = SftpSettings()
    inbox: InboxSettings = InboxSettings()
    ui: UiSettings = UiSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file (handed in as init values); no .env, no secrets dir.
        del settings_cls, dotenv_settings, file_secret_settings
        return (env_settings, init_settings)

    @property
    def journal_dir(self) -> Path:
        return self.state_path / "journal"

    @property
    def state_path(self) -> Path:
        return self.state_dir.expanduser()

    @property
    def db_url(self) -> str:
        """The database URL in force: the configured one, or the embedded SQLite file."""
        if url := self.database_url.get_secret_value():
            return url
        return f"sqlite:///{self.state_path / SQLITE_FILE_NAME}"


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML configuration file, turning every failure into a ConfigError."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def load_settings(
    config_file: Path | None,
    environ: Mapping[str, str],
    **overrides: Any,  # noqa: ANN401 - values are validated by pydantic
) -> Settings:
    """Build Settings from an optional TOML file, then ``ATOZ_`` variables, then overrides.

    ``environ`` is consulted for ``ATOZ_CONFIG`` only; pydantic-settings reads the process
    environment for the ``ATOZ_`` values themselves, so an error is traced back to the variable
    that caused it by looking there too.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        values = read_toml(config_file)
    elif environ.get("ATOZ_CONFIG"):
        config_file = Path(environ["ATOZ_CONFIG"])
        try:
            values = read_toml(config_file)
        except ConfigError as exc:
            raise ConfigError(f"ATOZ_CONFIG: {exc}") from None
    values.update(overrides)
    variables = atoz_variables(os.environ)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, config_file, variables)) from None
    except SettingsError as exc:
        raise ConfigError(describe_settings_error(exc, variables)) from None


def atoz_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``ATOZ_`` variables, their names upper-cased (pydantic-settings ignores case)."""
    return {
        name.upper(): value
        for name, value in environ.items()
        if name.upper().startswith(ENV_PREFIX) and name.upper() != "ATOZ_CONFIG"
    }


def env_name(key: Collection[str | int]) -> str:
    """The variable that sets a dotted key: ``scan.batch_size`` is ATOZ_SCAN__BATCH_SIZE."""
    parts = [str(part) for part in key]
    if parts == ["atoz_path"]:
        return "ATOZ_PATH"  # its alias: not ATOZ_ATOZ_PATH
    return ENV_PREFIX + "__".join(parts).upper()


def _variable_for(loc: tuple[str | int, ...], variables: Collection[str]) -> str | None:
    """The ATOZ_ variable a value at ``loc`` came from, if one did (the environment wins over
    the file): the variable of the key itself or of an enclosing one (a JSON list, a table)."""
    for end in range(len(loc), 0, -1):
        name = env_name(loc[:end])
        if name in variables:
            return name
    return None


def known_keys() -> dict[str, Any]:
    """Every settable key, dotted (``watcher.settle_seconds``), with its annotation."""

    def walk(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, Any]]:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                yield from walk(annotation, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", annotation

    return dict(walk(Settings, ""))


def closest_key(key: str) -> str | None:
    """The known key an unknown one was most likely meant to be (a typo, a missing section)."""
    keys = list(known_keys())
    found = difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
    if found:
        return found[0]
    # The right name in the wrong place (``settle_seconds`` at the top, ``scan.poll_interval``).
    by_leaf: dict[str, str] = {}
    for known in keys:
        by_leaf.setdefault(known.rsplit(".", 1)[-1], known)
    leaf = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(by_leaf), n=1, cutoff=0.75)
    return by_leaf[leaf[0]] if leaf else None


def describe_validation_error(
    exc: ValidationError, source: Path | None, variables: Collection[str] = ()
) -> str:
    """One line per problem after a heading, each naming the key, or the ``ATOZ_`` variable
    the bad value came from: ``scan.batch_size: ...``, ``ATOZ_SCAN__BATCH_SIZE: ...``."""
    lines = []
    from_file = False
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(part) for part in loc) or "(top level)"
        variable = _variable_for(loc, variables)
        from_file = from_file or variable is None
        if error["type"] == "extra_forbidden":
            message = "unknown key"
            suggestion = closest_key(key)
            if suggestion is not None:
                shown = env_name(suggestion.split(".")) if variable else suggestion
                message += f"; did you mean `{shown}`?"
        elif error["type"] == "missing":
            message = "required, not set"
            if len(loc) == 1:
                message += f" (in the config file, or as {env_name(loc)})"
        else:
            message = error["msg"]
        lines.append(f"  {variable} ({key}): {message}" if variable else f"  {key}: {message}")
    heading = (
        f"configuration error in {source}:"
        if source is not None and from_file
        else "configuration error:"
    )
    return "\n".join([heading, *lines])


def describe_settings_error(exc: SettingsError, variables: Mapping[str, str]) -> str:
    """pydantic-settings could not decode a variable holding a list or table (JSON)."""
    found = re.search(r'field "(\w+)"', str(exc))
    field = found.group(1) if found else ""
    prefix = env_name([field]) if field else ENV_PREFIX
    under = [name for name in sorted(variables) if name.startswith(prefix)]
    suspects = [name for name in under if not _is_json(variables[name])] or under
    names = ", ".join(suspects) or prefix + "..."
    return (
        f"configuration error: {names}: not valid JSON; a list is written "
        '["a", "b"], a table {"key": "value"}'
    )


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
