"""Live events from a Windows share: SMB2 CHANGE_NOTIFY on the A-to-Z folder, whole tree.

A Linux machine that mounts the share over CIFS hears nothing through inotify about what the
workstations write to the server. The server itself knows: an SMB2 CHANGE_NOTIFY request with
the WATCH_TREE flag, on the share's A-to-Z folder, is answered with the names of what was
added, changed, removed or renamed anywhere below it. This watcher keeps one such request
outstanding at all times, maps each name to the same file under ``atoz_path`` (the CIFS mount of
the same share, where the files are renamed and read) and hands it to the daemon's handler,
exactly as inotify events are.

- The server answers one request with what fits in ``notify_buffer``; when more changed it
  answers "too many changes" (STATUS_NOTIFY_ENUM_DIR): an overflow, the daemon rescans.
- A dropped connection (the server restarts, the network goes away) is made again with backoff;
  what changed meanwhile was not heard, so the daemon rescans once subscribed again. A
  connection silent for too long is tested with an SMB2 ECHO, answered within ``timeout``.
- A server that refuses notifications at the start (Samba's ``change notify = no``, some
  NAS firmware) raises ``NotificationsRefusedError``: the caller polls instead.
- Connecting, logging in, opening the folder and subscribing each run under ``timeout``: past
  it the connection is closed, which ends the wait.
- The password is held in memory only and never shown: errors and log lines carry the server,
  the share and the reason, never the credentials.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog
from smbprotocol.change_notify import (
    ChangeNotifyFlags,
    CompletionFilter,
    FileAction,
    FileNotifyInformation,
    SMB2ChangeNotifyRequest,
    SMB2ChangeNotifyResponse,
)
from smbprotocol.connection import Connection
from smbprotocol.exceptions import (
    NotifyEnumDir,
    SMBAuthenticationError,
    SMBException,
    SMBResponseException,
)
from smbprotocol.header import NtStatus
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FileAttributes,
    ImpersonationLevel,
    Open,
    ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from atoz_watcher.config.sections import SmbSettings
from atoz_watcher.errors import AtozError, ConfigError
from atoz_watcher.rules.layout import FILE
from atoz_watcher.system.backoff import next_delay
from atoz_watcher.watch.handler import Kind, QueueingHandler

log = structlog.get_logger("atoz_watcher.watch")

FILTER: Final = (
    CompletionFilter.FILE_NOTIFY_CHANGE_FILE_NAME
    | CompletionFilter.FILE_NOTIFY_CHANGE_DIR_NAME
    | CompletionFilter.FILE_NOTIFY_CHANGE_SIZE
    | CompletionFilter.FILE_NOTIFY_CHANGE_LAST_WRITE
)
# A connection that brought nothing for this long is asked to answer an ECHO.
KEEPALIVE_S: Final = 30.0
RECONNECT_FIRST_S: Final = 0.5
RECONNECT_MAX_S: Final = 30.0
LOGIN_REFUSED: Final = frozenset(
    {
        NtStatus.STATUS_LOGON_FAILURE,
        NtStatus.STATUS_WRONG_PASSWORD,
        NtStatus.STATUS_PASSWORD_EXPIRED,
    }
)
# What the server says when the share or the folder in it is not there, or not for this account.
NOT_THERE: Final = {
    NtStatus.STATUS_BAD_NETWORK_NAME: "no such share",
    NtStatus.STATUS_OBJECT_NAME_NOT_FOUND: "no such folder in the share",
    NtStatus.STATUS_OBJECT_PATH_NOT_FOUND: "no such folder in the share",
    NtStatus.STATUS_ACCESS_DENIED: "the account may not open it",
}


class SmbError(AtozError):
    """The share could not be watched (unreachable, refused the login, no such folder)."""


class NotificationsRefusedError(SmbError):
    """The server does not allow change notifications: poll instead."""


class _Dropped(Exception):  # noqa: N818 - internal signal, not an error for the caller
    """The connection ended while a request was outstanding."""


class _TooMany(Exception):  # noqa: N818 - internal signal, not an error for the caller
    """The server had more changes than it could send: rescan."""


def read_password(path: Path) -> str:
    """The password in ``password_file``: its first line, without the line end."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"watcher.smb.password_file {path} cannot be read: {exc.strerror}"
        ) from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise ConfigError(f"watcher.smb.password_file {path} is empty")
    return password


def _reason(exc: BaseException, password: str) -> str:
    """What went wrong, on one line, without the password (should a library ever echo it)."""
    if isinstance(exc, SMBResponseException):
        text = f"the server answered {exc.status:#010x} ({type(exc).__name__})"
    else:
        text = " ".join(str(exc).split()) or type(exc).__name__
    return text.replace(password, "***") if password else text


@dataclass
class _Link:
    """One live subscription: the connection, its session, the open folder and the request."""

    connection: Connection
    session: Session
    folder: Open
    request: Any = None  # smbprotocol's Request for the outstanding CHANGE_NOTIFY


class ShareWatcher:
    """Watches ``\\\\server\\share\\path`` and feeds ``handler`` with paths under ``root``.

    The daemon uses it like watchdog's observer: ``start`` (subscribes, or raises), ``stop``,
    ``join``. ``on_overflow`` is called when the server had more changes than it could send,
    ``on_resubscribed`` after a dropped connection was made again: both mean "rescan".
    """

    def __init__(
        self,
        settings: SmbSettings,
        password: str,
        root: str,
        handler: QueueingHandler,
        *,
        on_overflow: Callable[[], None],
        on_resubscribed: Callable[[], None],
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        self._settings = settings
        self._password = password
        self._root = root.rstrip(os.sep) or os.sep
        self._handler = handler
        self._on_overflow = on_overflow
        self._on_resubscribed = on_resubscribed
        self._keepalive_s = keepalive_s
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _link against stop() from another thread
        self._link: _Link | None = None
        self._thread = threading.Thread(target=self._run, name="atoz-smb", daemon=True)
        self.subscriptions = 0  # how many times a subscription was made (1 + reconnects)

    @property
    def where(self) -> str:
        s = self._settings
        inside = "\\" + s.path.strip("\\/").replace("/", "\\") if s.path.strip("\\/") else ""
        return f"\\\\{s.server}\\{s.share}{inside} (port {s.port})"

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe, then run; ``NotificationsRefusedError`` or ``SmbError`` when that fails."""
        self._subscribe()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            link = self._link
        if link is not None:
            self._drop(link.connection)

    def join(self, timeout: float | None = None) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # -- connecting -------------------------------------------------------------------------

    def _subscribe(self) -> None:
        s = self._settings
        connection = Connection(uuid.uuid4(), s.server, s.port, require_signing=True)
        try:
            with _deadline(connection, s.timeout):
                link = self._open(connection)
                early = self._request(link)
        except (SmbError, _Dropped, SMBException, OSError, ValueError) as exc:
            self._drop(connection)
            raise self._failure(exc) from None
        with self._lock:
            self._link = link
            if self._stop.is_set():  # stopped while connecting
                self._drop(connection)
        self.subscriptions += 1
        self._deliver(early)

    def _open(self, connection: Connection) -> _Link:
        """Connect, log in, open the A-to-Z folder in the share."""
        s = self._settings
        connection.connect(timeout=s.timeout)
        session = Session(connection, s.username, self._password, require_encryption=False)
        session.connect()
        tree = TreeConnect(session, f"\\\\{s.server}\\{s.share}")
        tree.connect()
        folder = Open(tree, s.path.strip("\\/").replace("/", "\\"))
        folder.create(
            ImpersonationLevel.Impersonation,
            DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.SYNCHRONIZE,
            FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
            ShareAccess.FILE_SHARE_READ
            | ShareAccess.FILE_SHARE_WRITE
            | ShareAccess.FILE_SHARE_DELETE,
            CreateDisposition.FILE_OPEN,
            CreateOptions.FILE_DIRECTORY_FILE,
        )
        return _Link(connection, session, folder)

    def _failure(self, exc: Exception) -> SmbError:
        """The error to raise for a failed subscription: what to check, never the password."""
        if isinstance(exc, NotificationsRefusedError):
            return exc
        if isinstance(exc, SmbError):  # the deadline passed
            return SmbError(f"{self.where}: {exc}")
        if isinstance(exc, _Dropped):
            return SmbError(f"{self.where}: the subscription was not answered")
        status = exc.status if isinstance(exc, SMBResponseException) else None
        if isinstance(exc, SMBAuthenticationError) or status in LOGIN_REFUSED:
            return SmbError(
                f"{self.where}: the server refused the login of {self._settings.username!r}: "
                "check watcher.smb.username and the password in watcher.smb.password_file"
            )
        if status in NOT_THERE:
            return SmbError(
                f"{self.where}: {NOT_THERE[status]} (check watcher.smb.share, "
                "watcher.smb.path and the account's rights on them)"
            )
        return SmbError(f"{self.where}: {_reason(exc, self._password)}")

    def _request(self, link: _Link) -> list[FileNotifyInformation]:
        """Send CHANGE_NOTIFY requests until the server holds one (its interim answer); the
        changes of those it answered at once (changes it held since the last answer); an
        answer that it lost count of them calls ``on_overflow``."""
        changes: list[FileNotifyInformation] = []
        while True:
            request = SMB2ChangeNotifyRequest()
            request["flags"] = ChangeNotifyFlags.SMB2_WATCH_TREE
            request["output_buffer_length"] = self._settings.notify_buffer
            request["file_id"] = link.folder.file_id
            request["completion_filter"] = FILTER
            tree = link.folder.tree_connect
            sent = link.connection.send(request, tree.session.session_id, tree.tree_connect_id)
            link.request = sent
            if not sent.response_event.wait(self._settings.timeout):
                raise _Dropped
            with sent.response_event_lock:
                status = sent.response["status"].get_value() if sent.response else None
                if status == NtStatus.STATUS_PENDING:
                    sent.response_event.clear()  # the final answer sets it again
                    return changes
            if status is None:
                raise _Dropped
            try:
                changes.extend(self._answer(link))
            except _TooMany:
                self._overflowed()  # and ask again
            except SMBResponseException as exc:
                raise NotificationsRefusedError(
                    f"{self.where}: the server does not allow change notifications "
                    f"({_reason(exc, self._password)})"
                ) from None

    def _answer(self, link: _Link) -> list[FileNotifyInformation]:
        """The final answer to the outstanding request; ``_TooMany`` when the server says
        "too many changes" (STATUS_NOTIFY_ENUM_DIR) or sends no record at all."""
        try:
            response = link.connection.receive(link.request, timeout=self._settings.timeout)
        except NotifyEnumDir:
            raise _TooMany from None
        body = SMB2ChangeNotifyResponse()
        body.unpack(response["data"].get_value())
        buffer = body["buffer"].get_value()
        if not buffer:
            raise _TooMany
        changes: list[FileNotifyInformation] = []
        offset = 0
        while buffer[offset:]:
            info = FileNotifyInformation()
            info.unpack(buffer[offset:])
            changes.append(info)
            step = info["next_entry_offset"].get_value()
            if not step:
                break
            offset += step
        return changes

    def _drop(self, connection: Connection) -> None:
        try:
            connection.disconnect(close=False)
        except Exception:  # noqa: BLE001 - closing a broken connection: nothing left to do
            log.debug("smb.close_failed", where=self.where)

    # -- running ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                link = self._link
            try:
                if link is None:
                    raise _Dropped  # noqa: TRY301 - one path for every way of losing it
                try:
                    changes = self._wait(link)
                except _TooMany:
                    self._overflowed()
                    changes = []
                # Ask again before handing the changes on: the server holds what comes
                # meanwhile until the next request.
                early = self._request(link)
            except Exception as exc:  # noqa: BLE001 - whatever broke the link: make it again
                if self._stop.is_set():
                    return
                reason = "" if isinstance(exc, _Dropped) else _reason(exc, self._password)
                log.warning("smb.connection_lost", where=self.where, reason=reason or "closed")
                if not self._reconnect(link):
                    return
                continue
            self._deliver(changes + early)

    def _overflowed(self) -> None:
        log.warning("smb.too_many_changes", where=self.where, then="rescan")
        self._on_overflow()

    def _wait(self, link: _Link) -> list[FileNotifyInformation]:
        """Wait for the outstanding request's answer, testing a silent connection."""
        request = link.request
        while not request.response_event.wait(self._keepalive_s):
            if self._stop.is_set():
                raise _Dropped
            link.connection.echo(sid=link.session.session_id, timeout=int(self._settings.timeout))
        with request.response_event_lock:
            if request.response is None or request.response["status"].get_value() == (
                NtStatus.STATUS_PENDING
            ):
                raise _Dropped  # woken by the connection's end, not by an answer
        return self._answer(link)

    def _reconnect(self, old: _Link | None) -> bool:
        """Connect and subscribe again, with backoff; False when stopped first."""
        if old is not None:
            self._drop(old.connection)
        with self._lock:
            self._link = None
        delay = next_delay(0.0, first=RECONNECT_FIRST_S, maximum=RECONNECT_MAX_S)
        while not self._stop.wait(delay):
            try:
                self._subscribe()
            except Exception as exc:  # noqa: BLE001 - the server may be down for a while
                reason = str(exc) if isinstance(exc, SmbError) else _reason(exc, self._password)
                log.warning("smb.reconnect_failed", where=self.where, reason=reason)
                delay = next_delay(delay, first=RECONNECT_FIRST_S, maximum=RECONNECT_MAX_S)
                continue
            if self._stop.is_set():
                return False
            log.info("smb.resubscribed", where=self.where, then="rescan")
            self._on_resubscribed()
            return True
        return False

    # -- changes -> events --------------------------------------------------------------------

    def _deliver(self, changes: list[FileNotifyInformation]) -> None:
        for info in changes:
            self._one(info["action"].get_value(), info["file_name"].get_value())

    def _one(self, action: int, name: str) -> None:
        parts = [part for part in name.split("\\") if part]
        if not parts:
            return
        path = os.path.join(self._root, *parts)  # noqa: PTH118 - strings, one per change
        put = self._handler.put
        if len(parts) < FILE:
            # A letter or patient folder added or renamed into place: list what it holds.
            if action in (FileAction.FILE_ACTION_ADDED, FileAction.FILE_ACTION_RENAMED_NEW_NAME):
                put(Kind.FOLDER, path, is_directory=True)
            return
        if action in (FileAction.FILE_ACTION_REMOVED, FileAction.FILE_ACTION_RENAMED_OLD_NAME):
            put(Kind.GONE, path, is_directory=False)
        elif action == FileAction.FILE_ACTION_RENAMED_NEW_NAME:
            put(Kind.CLOSED, path, is_directory=False)  # renamed into place: complete
        else:  # added, modified
            put(Kind.TOUCH, path, is_directory=False)


@contextmanager
def _deadline(connection: Connection, seconds: float) -> Iterator[None]:
    """Close ``connection`` when the block has not ended within ``seconds``; a call waiting
    on it then fails at once."""
    timer = threading.Timer(seconds, connection.disconnect, kwargs={"close": False})
    timer.daemon = True
    timer.start()
    started = time.monotonic()
    try:
        yield
    except (SMBException, OSError, ValueError) as exc:
        if time.monotonic() - started >= seconds:
            raise SmbError(f"no answer within {seconds:g} s") from exc
        raise
    finally:
        timer.cancel()
        timer.join()
