"""The configuration's sections: one small frozen model per TOML table.

The lower rooms take these (or plain values), never the whole Settings, which only ``app``
sees; this module imports pydantic alone, not pydantic-settings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)

from atoz_watcher.rules.ignore import DEFAULT_IGNORE
from atoz_watcher.rules.tokens import DEFAULT_PATTERN, TokenPatternError, TokenRule


class ScanSettings(BaseModel):
    """How the tree is walked and how registrations are grouped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Files registered per transaction (and per journal fsync). Larger batches are faster on a
    # first import; each batch holds the registration lock while it renames and inserts.
    batch_size: PositiveInt = 500
    # Seconds to wait for another registrar (a second atoz-watcher) to release the lock.
    lock_timeout: PositiveInt = 60


class SmbSettings(BaseModel):
    """``[watcher.smb]``: the Windows share the A-to-Z root is mounted from, for mode "smb"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The file server, as this machine reaches it (name or address), and its SMB port.
    server: str = Field(min_length=1)
    port: int = Field(default=445, ge=1, le=65535)
    # The share's name (OpenDentImages in \\server\OpenDentImages).
    share: str = Field(min_length=1)
    # The folder inside the share that is the A-to-Z root ("" when the share is the root).
    path: str = ""
    # An account that may read the share (the smb mode only lists and watches; the files are
    # renamed and read through the mount at atoz_path). "DOMAIN\\user" or "user".
    username: str = Field(min_length=1)
    # A file holding the account's password (and nothing else; mode 0600), read at start.
    password_file: Path
    # Deadline for connecting, logging in and subscribing (seconds); also how long a silent
    # connection may go unanswered before it counts as dropped.
    timeout: float = Field(default=10.0, gt=0, le=300)
    # Bytes of change records the server may send at once; more changes than fit in one answer
    # make the server say "too many changes" and a rescan runs.
    notify_buffer: int = Field(default=65536, ge=256, le=1_048_576)


class WatcherSettings(BaseModel):
    """How the daemon hears about files (``atoz-watcher run``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # native: inotify (local disks); polling: list the tree every poll_interval (CIFS/NFS
    # shares, where other machines' writes raise no events); smb: the Windows server's own
    # change notifications ([watcher.smb]), polling when it refuses them; auto: native on a
    # local filesystem, polling on a network one (or when inotify cannot start).
    mode: Literal["auto", "native", "polling", "smb"] = "auto"
    # A file is registered once no event came for it for this long after its writer closed
    # it, and its size and mtime are unchanged when checked again.
    settle_seconds: float = Field(default=0.3, gt=0, le=60)
    # The same, when no close was seen: a scanner may hold the file open between chunks, and
    # some close events never arrive (network shares, polling, a folder made a moment ago).
    open_settle_seconds: float = Field(default=2.0, gt=0, le=600)
    poll_interval: float = Field(default=5.0, gt=0, le=3600)
    # Polling lists a patient folder only when its modification time changed, and every folder
    # once every this many passes (for servers whose folder times lie); 0: never.
    poll_full_every: int = Field(default=60, ge=0)
    # The safety rescan: events do get lost (overflow, network shares, a stopped service).
    rescan_interval: float = Field(default=3600.0, gt=0)
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    smb: SmbSettings | None = None

    @model_validator(mode="after")
    def _smb_needs_its_share(self) -> WatcherSettings:
        if self.mode == "smb" and self.smb is None:
            raise ValueError('mode "smb" needs a [watcher.smb] table (server, share, ...)')
        return self


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
    # Memory all rendering threads together may hold in decoded pixels (MB). Each image's need
    # is estimated from its header before decoding (size, bit depth, channels, frames decoded);
    # a job waits while others hold the budget, and one that needs more than all of it gets
    # no thumbnail (logged with the reason). 1024 fits the largest image max_pixels allows.
    memory_budget_mb: PositiveInt = Field(default=1024, le=1024 * 1024)
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
    # GET /documents and /documents/{DocNum} run this many at once; the others queue in order
    # (api/reads.py). A read is mostly Python under one interpreter lock: more threads only
    # take turns on it; more than one covers a read's waits for a database on the LAN.
    read_threads: int = Field(default=4, ge=1, le=64)
    # A read queued this long (seconds) is answered 503 with Retry-After.
    read_wait_seconds: float = Field(default=30.0, gt=0, le=600)


class MaterializerSettings(BaseModel):
    """Placeholder rows (Note ``_download_:<url>`` or ``_rawBase64_:``) turned into files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The daemon looks for placeholder rows this often (seconds); 0 turns it off.
    interval: float = Field(default=30.0, ge=0)
    # Downloads: total time allowed (connect, redirects and the whole body: a server that
    # trickles is cut off at it), and the largest file accepted (bytes).
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
    # Seconds to resolve the host, connect, check the host key and log in.
    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    # Seconds for everything after the login: the transfer(s) of one request and the close.
    # A total deadline: when it passes the connection is dropped and the request gets a 400.
    transfer_timeout: float = Field(default=120.0, gt=0, le=3600)
    # Empty: any public host (loopback, private, link-local, cloud metadata and other internal
    # addresses refused, judged on the address connected to). Set: the only hosts clients may
    # name (names as written, IP addresses, networks such as "10.1.2.0/24"), and these may be
    # internal.
    allow_hosts: tuple[str, ...] = ()
    # The only ports SftpPort may name.
    allow_ports: tuple[Annotated[int, Field(ge=1, le=65535)], ...] = Field(
        default=(22,), min_length=1
    )
    # SFTP requests served at once; more are answered at once with a 503 and Retry-After, so
    # slow or stalled SFTP sites cannot take every one of the API's worker threads (40).
    max_in_flight: int = Field(default=8, ge=1, le=32)
    # Largest file UploadSftp pulls (bytes).
    max_bytes: PositiveInt = 100 * 1024 * 1024


class InboxFolder(BaseModel):
    """``[[inbox.folders]]``: one folder a scanner (or an export) drops files into."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Inside or outside the A-to-Z root; its subfolders whose names start with "_" (_Work,
    # _Done, _Unmatched, _Duplicates) are the inbox's own and never processed.
    path: Path
    # The category a file gets when nothing in it names one: a DefNum or an image category's
    # name. None: Open Dental's default, the first visible image category.
    category: int | str | None = Field(default=None, union_mode="left_to_right")

    @field_validator("category")
    @classmethod
    def _category_is_usable(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value <= 0:
            raise ValueError("a DefNum is a positive number")
        if isinstance(value, str) and not value.strip():
            raise ValueError("a category name cannot be empty")
        return value


class InboxSettings(BaseModel):
    """``[inbox]``: scanner inboxes, whose files are routed to patients and filed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folders: tuple[InboxFolder, ...] = ()
    # The original of a filed scan is kept in <inbox>/_Done/ this many days, then removed; a
    # file with the same content arriving meanwhile is a duplicate (<inbox>/_Duplicates/).
    keep_days: float = Field(default=30.0, ge=0)
    # The routing rules, tried in this order; each can be switched off.
    cover_sheets: bool = True
    tokens: bool = True
    dicom: bool = True
    # What a DICOM file's PatientID is matched against: PatNum, or patient.ChartNumber.
    dicom_match: Literal["patnum", "chart"] = "patnum"
    # The regular expression that finds a patient in a file name (named groups patnum, chart,
    # category); the default routes PAT18_consent.pdf, pat-18 x.pdf and PatNum18.jpg.
    token_pattern: str = DEFAULT_PATTERN

    @field_validator("token_pattern")
    @classmethod
    def _token_pattern_compiles(cls, value: str) -> str:
        try:
            TokenRule.compile(value)
        except TokenPatternError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def token_rule(self) -> TokenRule:
        """The compiled token pattern (checked when the settings were loaded)."""
        return TokenRule.compile(self.token_pattern)


# What `atoz-watcher hash-password` prints (argon2-cffi's PasswordHasher): "$argon2id$v=19$...".
_ARGON2_HASH = re.compile(r"\$argon2(?:id|i|d)\$[^\s]+")


class UiUser(BaseModel):
    """``[[ui.users]]``: one person who may log in to the front-desk page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    # Made by `atoz-watcher hash-password`; never the password itself. Kept out of reprs.
    password_hash: str = Field(repr=False)
    # staff: may look and file or discard inbox files; viewer: may look, never move files.
    role: Literal["staff", "viewer"] = "staff"

    @model_validator(mode="after")
    def _usable(self) -> UiUser:
        if not self.name.strip():
            raise ValueError("a user's name cannot be empty")
        if not _ARGON2_HASH.fullmatch(self.password_hash):
            # Named by the user, never by the value: a password pasted here stays unprinted.
            raise ValueError(
                f"user {self.name!r}: password_hash is not an argon2 hash; make one with "
                "`atoz-watcher hash-password` and paste the line it prints"
            )
        return self


class UiSettings(BaseModel):
    """``[ui]``: the front-desk page, served at /ui on the [api] host and port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    users: list[UiUser] = []
    # A session unused this long ends (minutes).
    session_idle_minutes: float = Field(default=30, gt=0)
    # The session cookie is sent over HTTPS only (set when served behind TLS).
    secure_cookies: bool = False
    # Failed logins allowed per name and per client address within the window; then 429.
    login_attempts: PositiveInt = 5
    login_window_minutes: float = Field(default=15, gt=0)
    # Rows on the Today page.
    today_limit: PositiveInt = 50

    @field_validator("users")
    @classmethod
    def _names_unique(cls, users: list[UiUser]) -> list[UiUser]:
        seen: set[str] = set()
        for user in users:
            if user.name in seen:
                raise ValueError(f"user {user.name!r} is listed twice")
            seen.add(user.name)
        return users
