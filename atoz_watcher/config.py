"""Settings: a TOML file overridden by ``ATOZ_`` environment variables. No side effects."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SecretStr,
    ValidationError,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from atoz_watcher.errors import ConfigError

DEFAULT_STATE_DIR = Path("~/.local/state/atoz-watcher")
SQLITE_FILE_NAME = "atoz-watcher.sqlite3"


class ScanSettings(BaseModel):
    """How the tree is walked and how registrations are grouped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Files registered per transaction (and per journal fsync). Larger batches are faster on a
    # first import; each batch holds the registration lock while it renames and inserts.
    batch_size: PositiveInt = 500
    # Seconds to wait for another registrar (a second atoz-watcher) to release the lock.
    lock_timeout: PositiveInt = 60


# NAS and OS litter that is never a patient document. Matched (fnmatch, case-insensitive) against
# each part of a path below the root, so "@eaDir" also hides everything inside it.
DEFAULT_IGNORE = (
    "Thumbnails",
    "@eaDir",
    ".stfolder",
    "#recycle",
    "._*",
    "~$*",
    "*.tmp",
    "*.part",
    "*.crdownload",
)


class WatcherSettings(BaseModel):
    """How the daemon hears about files (``atoz-watcher run``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # native: inotify (local disks); polling: stat the tree every poll_interval (CIFS/NFS
    # shares, where other machines' writes raise no events); auto: native, else polling.
    mode: Literal["auto", "native", "polling"] = "auto"
    # A file is registered once no event came for it for this long after its writer closed
    # it, and its size and mtime are unchanged when checked again.
    settle_seconds: float = Field(default=0.3, gt=0, le=60)
    # The same, when no close was seen: a scanner may hold the file open between chunks, and
    # some close events never arrive (network shares, polling, a folder made a moment ago).
    open_settle_seconds: float = Field(default=2.0, gt=0, le=600)
    poll_interval: float = Field(default=5.0, gt=0, le=3600)
    # The safety rescan: events do get lost (overflow, network shares, a stopped service).
    rescan_interval: float = Field(default=3600.0, gt=0)
    ignore: tuple[str, ...] = DEFAULT_IGNORE


class MetricsSettings(BaseModel):
    """The Prometheus text endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class ThumbnailSettings(BaseModel):
    """The 100x100 thumbnails in each patient folder's Thumbnails/."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Build a thumbnail for each image the daemon registers.
    enabled: bool = True
    # Threads that render (0: one per core). Pillow decodes outside the GIL, so threads scale.
    workers: int = Field(default=0, ge=0, le=64)
    # Images with more pixels get no thumbnail (decompression bombs); 80 MP is twice a 40 MP
    # camera and stays under Pillow's own warning threshold.
    max_pixels: PositiveInt = Field(default=80_000_000, le=89_000_000)
    # At start, build the missing or stale thumbnails of documents added or changed in the last
    # this many days (those of files registered just before a stop, or of images Open Dental
    # just rotated), at low priority; 0: none. `atoz-watcher thumbnails` does all documents.
    backfill_days: float = Field(default=2.0, ge=0)


class ApiKey(BaseModel):
    """One client's pair: ``Authorization: ODFHIR <developer_key>/<customer_key>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    developer_key: SecretStr
    customer_key: SecretStr


class ApiSettings(BaseModel):
    """Open Dental's Documents API, served by ``atoz-watcher api`` and, when enabled, ``run``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    host: str = "127.0.0.1"
    # Open Dental's API service port.
    port: int = Field(default=30223, ge=0, le=65535)
    keys: tuple[ApiKey, ...] = ()
    # How filePath shows a file: this root, then Letter, ImageFolder and FileName joined with
    # file_path_separator (e.g. "\\\\server\\OpenDentImages" and "\\", as Open Dental's
    # workstations see the share). Empty: the A-to-Z root as this machine sees it, with "/".
    file_path_root: str = ""
    file_path_separator: str = Field(default="/", min_length=1, max_length=1)
    # Largest file accepted by Upload, decoded (bytes).
    max_upload_bytes: PositiveInt = 100 * 1024 * 1024
    # The largest page a list returns (GET /documents' Limit, and its default): 1000 as Open
    # Dental's API Service; 100 as its cloud API. A larger Limit is cut to this.
    max_limit: PositiveInt = 1000


class MaterializerSettings(BaseModel):
    """Placeholder rows (Note ``_download_:<url>`` or ``_rawBase64_:``) turned into files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The daemon looks for placeholder rows this often (seconds); 0 turns it off.
    interval: float = Field(default=30.0, ge=0)
    # Downloads: total time allowed, and the largest file accepted (bytes).
    timeout: float = Field(default=30.0, gt=0, le=3600)
    max_download_bytes: PositiveInt = 100 * 1024 * 1024
    # Hosts (names or IP addresses) a download may reach even though they resolve to a
    # loopback, private or link-local address; everything else there is refused (SSRF).
    allow_hosts: tuple[str, ...] = ()
    # A placeholder that keeps failing is tried this many times, with backoff, then left in
    # place with a log line and a metric (never deleted).
    max_attempts: PositiveInt = 5


class SftpSettings(BaseModel):
    """The SFTP endpoints (UploadSftp, DownloadSftp, Thumbnails, DownloadMount)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # OpenSSH known_hosts file the servers' host keys are checked against. Empty: the service
    # user's ~/.ssh/known_hosts.
    known_hosts: Path | None = None
    # Accept a server whose host key is not in known_hosts (trust on first use, not saved).
    trust_unknown_hosts: bool = False
    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    # Whole transfer of one file, in seconds.
    transfer_timeout: float = Field(default=120.0, gt=0, le=3600)
    # Hosts (as written in SftpAddress, or their IP addresses) clients may name; empty: any.
    allow_hosts: tuple[str, ...] = ()
    # Largest file UploadSftp pulls (bytes).
    max_bytes: PositiveInt = 100 * 1024 * 1024


class Settings(BaseSettings):
    """Everything atoz-watcher is told; built once, at the edge, and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="ATOZ_",
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
    environment for the ``ATOZ_`` values themselves.
    """
    if config_file is None and environ.get("ATOZ_CONFIG"):
        config_file = Path(environ["ATOZ_CONFIG"])
    values: dict[str, Any] = read_toml(config_file) if config_file is not None else {}
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, config_file)) from None


def describe_validation_error(exc: ValidationError, source: Path | None) -> str:
    """One line per problem, each naming the key: ``scan.batch_size: ...``."""
    where = f" in {source}" if source is not None else ""
    lines = [f"configuration error{where}:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required, not set (in the config file or the environment)"
        else:
            message = error["msg"]
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)
