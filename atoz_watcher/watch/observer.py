"""Start watching the A-to-Z tree: native (our lean inotify emitter), our own polling, or the
Windows server's SMB change notifications, in one factory that picks and falls back."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import structlog

from atoz_watcher.config.sections import WatcherSettings
from atoz_watcher.errors import AtozError
from atoz_watcher.rules.ignore import IgnoreRules
from atoz_watcher.rules.layout import PATIENT
from atoz_watcher.watch.filesystem import Filesystem, filesystem_of
from atoz_watcher.watch.handler import EVENT_FILTER, Kind, QueueingHandler
from atoz_watcher.watch.inotify import TreeObserver
from atoz_watcher.watch.polling import TreePoller

log = structlog.get_logger("atoz_watcher.watch")

Running = Literal["native", "polling", "smb"]
RAISE_WATCHES = (
    "sysctl -w fs.inotify.max_user_watches=524288 (and put "
    "fs.inotify.max_user_watches=524288 in /etc/sysctl.d/90-atoz-watcher.conf)"
)


class WatchError(AtozError):
    """Watching could not start (native or SMB) and polling was not the way out."""


class Observer(Protocol):
    """What the daemon needs of a started observer (watchdog's, the poller, the SMB one)."""

    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


@dataclass
class Watching:
    """A started observer, the mode it runs in, and how to stop it."""

    observer: Observer
    mode: Running

    def stop(self, timeout_s: float = 5.0) -> None:
        self.observer.stop()
        self.observer.join(timeout_s)


def start_watching(
    root: Path,
    handler: QueueingHandler,
    *,
    settings: WatcherSettings,
    ignore: IgnoreRules,
    on_overflow: Callable[[], None],
    on_resubscribed: Callable[[], None],
    filesystem: Callable[[Path], Filesystem] = filesystem_of,
) -> Watching:
    """Start watching ``root`` as ``settings.mode`` says.

    - native: inotify on the root, the letter and the patient folders (files matter nowhere
      else), ignored folders not at all; a queue overflow calls ``on_overflow``.
    - auto: native on a local filesystem; polling on a network or FUSE one, where inotify does
      not hear other machines' writes, and where native watching cannot start (most often:
      the inotify watch limit), with a warning.
    - smb: the server's change notifications; polling, with a warning, when it refuses them.
    - polling: ``TreePoller`` every ``poll_interval``.
    """
    mode = settings.mode
    if mode == "smb":
        watching = _start_smb(root, handler, settings, on_overflow, on_resubscribed)
        if watching is not None:
            return watching
    elif mode == "auto" and not (found := filesystem(root)).inotify_sees_all:
        log.info(
            "watch.polling_network_filesystem",
            root=str(root),
            filesystem=found.type,
            reason="inotify does not hear other machines' writes there",
        )
    elif mode != "polling":
        native = TreeObserver(max_depth=PATIENT, skip_dir=ignore, on_overflow=on_overflow)
        try:
            native.schedule(handler, str(root), recursive=True, event_filter=EVENT_FILTER)
            native.start()
        except OSError as exc:
            native.stop()
            reason = _why(exc)
            if mode == "native":
                raise WatchError(f"native watching of {root} failed: {reason}") from None
            log.warning("watch.fallback_to_polling", root=str(root), reason=reason)
        else:
            return Watching(native, "native")
    poller = TreePoller(
        str(root),
        lambda path: handler.put(Kind.TOUCH, path, is_directory=False),
        interval=settings.poll_interval,
        ignore=ignore,
        full_every=settings.poll_full_every,
    )
    poller.start()
    return Watching(poller, "polling")


def _start_smb(
    root: Path,
    handler: QueueingHandler,
    settings: WatcherSettings,
    on_overflow: Callable[[], None],
    on_resubscribed: Callable[[], None],
) -> Watching | None:
    """The SMB watcher, started; None when the server refuses notifications (poll instead).
    Any other failure (unreachable, login refused) is a WatchError: the settings are wrong or
    the server is down, and polling would hide it."""
    # Imported here: smbprotocol and cryptography cost about 23 MB, for the smb mode only.
    from atoz_watcher.watch.smb import (  # noqa: PLC0415
        NotificationsRefusedError,
        ShareWatcher,
        read_password,
    )

    smb = settings.smb
    if smb is None:  # the settings' validator makes this impossible
        raise WatchError('mode "smb" needs a [watcher.smb] table')
    watcher = ShareWatcher(
        smb,
        read_password(smb.password_file),
        str(root),
        handler,
        on_overflow=on_overflow,
        on_resubscribed=on_resubscribed,
    )
    try:
        watcher.start()
    except NotificationsRefusedError as exc:
        log.warning("watch.fallback_to_polling", root=str(root), reason=str(exc))
        return None
    except AtozError as exc:
        raise WatchError(f"SMB change notifications could not start: {exc}") from None
    return Watching(watcher, "smb")


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"the inotify watch limit is reached; raise it with {RAISE_WATCHES}"
    if exc.errno == errno.EMFILE:
        return "the inotify instance limit is reached (fs.inotify.max_user_instances)"
    return exc.strerror or str(exc)
