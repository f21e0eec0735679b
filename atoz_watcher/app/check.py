"""``atoz-watcher check``: is everything the daemon needs in place? One result per check."""

from __future__ import annotations

import contextlib
import grp
import ipaddress
import os
import pwd
import queue
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from atoz_watcher.config.sections import ApiSettings, UiSettings
from atoz_watcher.config.settings import Settings
from atoz_watcher.db.models import REQUIRED_TABLES
from atoz_watcher.db.queries import image_categories
from atoz_watcher.errors import AtozError, RootUnusableError
from atoz_watcher.ingest.scan import FolderEntry, walk_folders
from atoz_watcher.rules.ignore import IgnoreRules
from atoz_watcher.rules.layout import PATIENT, THUMBNAILS_DIR
from atoz_watcher.rules.naming import visible_in_order
from atoz_watcher.rules.wording import plural
from atoz_watcher.system.contained import LinkRefusedError
from atoz_watcher.system.fsops import is_folder
from atoz_watcher.watch.filesystem import MOUNTINFO, Filesystem, filesystem_of

INOTIFY_PROC = Path("/proc/sys/fs/inotify")
# What the docs and the FAIL message suggest: plenty for the largest practices, and the kernel
# only charges memory for watches in use.
RECOMMENDED_MAX_USER_WATCHES = 524_288
SYSCTL_CONF = "/etc/sysctl.d/90-atoz-watcher.conf"
# Watches beyond one per folder today: folders added later, other inotify users of this user.
MIN_HEADROOM = 1024
# Names shown in a detail line before "...".
SHOWN = 5


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    # One line: what was found, and when not ok, what to do.
    detail: str


Mode = Literal["auto", "native", "polling", "smb"]


def run_checks(
    settings: Settings,
    engine: Engine,
    *,
    proc: Path = INOTIFY_PROC,
    mountinfo: Path = MOUNTINFO,
) -> list[CheckResult]:
    """Every check, in the order a reader fixes things: database first, then folders."""
    root = settings.atoz_path
    filesystem = filesystem_of(root, mountinfo=mountinfo)
    mode = settings.watcher.mode
    inotify_mode: Mode = "polling" if mode == "auto" and not filesystem.inotify_sees_all else mode
    return [
        *check_database(engine),
        check_root(root),
        check_root_group(root),
        check_links(root),
        check_filesystem(filesystem, mode=mode),
        *check_inotify(root, mode=inotify_mode, proc=proc),
        *([check_smb(settings)] if mode == "smb" else []),
        check_state_dir(settings.state_path),
        *(check_inbox(folder.path, root) for folder in settings.inbox.folders),
        *([check_ui(settings.ui, settings.api)] if settings.ui.enabled else []),
    ]


def format_results(results: Sequence[CheckResult]) -> str:
    """``ok   name: detail`` or ``FAIL name: detail``, one line each."""
    return "\n".join(
        f"{'ok  ' if result.ok else 'FAIL'} {result.name}: {result.detail}" for result in results
    )


# -- database -------------------------------------------------------------------------------


def check_database(engine: Engine) -> list[CheckResult]:
    """The "database", "tables" and "image categories" checks; each needs the one before."""
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
    except SQLAlchemyError as exc:
        reason = describe_error(exc, engine)
        return [
            CheckResult(
                "database",
                ok=False,
                detail=f"cannot connect to {shown}: {reason}; check database_url "
                "(user, password, host, port, database) and that the server is running",
            ),
            _not_checked("tables", "the database is unreachable"),
            _not_checked("image categories", "the database is unreachable"),
        ]
    connected = CheckResult("database", ok=True, detail=f"connected to {shown}")
    tables = _run_check(engine, "tables", check_tables)
    if not tables.ok:
        return [connected, tables, _not_checked("image categories", "the tables check failed")]
    return [connected, tables, _run_check(engine, "image categories", check_categories)]


def _run_check(
    engine: Engine, name: str, check: Callable[[Connection], CheckResult]
) -> CheckResult:
    try:
        with engine.connect() as conn:
            return check(conn)
    except SQLAlchemyError as exc:
        return CheckResult(name, ok=False, detail=describe_error(exc, engine))


def check_tables(conn: Connection) -> CheckResult:
    present = set(inspect(conn).get_table_names())
    missing = [name for name in REQUIRED_TABLES if name not in present]
    if missing:
        return CheckResult(
            "tables",
            ok=False,
            detail=f"missing {', '.join(missing)}: run `atoz-watcher init-db`, "
            "or point database_url at Open Dental's database",
        )
    return CheckResult("tables", ok=True, detail=f"{', '.join(REQUIRED_TABLES)} present")


def check_categories(conn: Connection) -> CheckResult:
    categories = image_categories(conn)
    visible = visible_in_order(categories)
    hidden = len(categories) - len(visible)
    if not visible:
        found = f" (only {hidden} hidden)" if hidden else ""
        return CheckResult(
            "image categories",
            ok=False,
            detail=f"no visible image category{found}: add one in Open Dental (Setup, "
            "Definitions, Image Categories) or run `atoz-watcher init-db`",
        )
    names = ", ".join(c.name for c in visible[:SHOWN]) + (", ..." if len(visible) > SHOWN else "")
    return CheckResult("image categories", ok=True, detail=f"{len(visible)} visible: {names}")


def describe_error(exc: SQLAlchemyError, engine: Engine) -> str:
    """The driver's message on one line, the URL's password (if any) masked."""
    message = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)
    password = engine.url.password
    if password:
        message = message.replace(str(password), "***")
    return " ".join(message.split()) or type(exc).__name__


def _not_checked(name: str, because: str) -> CheckResult:
    return CheckResult(name, ok=False, detail=f"not checked: {because}")


# -- folders ----------------------------------------------------------------------------------


def check_root(root: Path) -> CheckResult:
    """The A-to-Z root is a directory this user can list, enter and write in (prefixes are
    stripped by renaming files), and its letter folders can be listed."""
    name = "A-to-Z root"
    if not root.exists():
        return CheckResult(
            name,
            ok=False,
            detail=f"{root} does not exist: set atoz_path to Open Dental's A-to-Z folder "
            "(and mount it first if it is a share)",
        )
    if not root.is_dir():
        return CheckResult(name, ok=False, detail=f"{root} is not a directory: fix atoz_path")
    lacking = [
        word
        for mode, word in ((os.R_OK, "read"), (os.W_OK, "write"), (os.X_OK, "enter"))
        if not os.access(root, mode)
    ]
    if lacking:
        return CheckResult(
            name,
            ok=False,
            detail=f"{root}: user {current_user()} cannot {' or '.join(lacking)} it: add the "
            "user to the group that owns the folder and give that group rwx",
        )
    try:
        with os.scandir(root) as entries:
            letters = [entry for entry in entries if is_folder(entry)]
    except OSError as exc:
        return CheckResult(name, ok=False, detail=f"{root} cannot be listed: {exc.strerror}")
    unlistable = []
    for letter in letters:
        try:
            with os.scandir(letter.path) as entries:
                next(entries, None)
        except OSError:
            unlistable.append(letter.name)
    if unlistable:
        return CheckResult(
            name,
            ok=False,
            detail=f"{root}: user {current_user()} cannot list {len(unlistable)} of "
            f"{plural(len(letters), 'letter folder')} ({', '.join(sorted(unlistable)[:SHOWN])}): "
            "give the folder's group read access throughout (chmod -R g+rwX)",
        )
    return CheckResult(
        name,
        ok=True,
        detail=f"{root}: readable and writable, {plural(len(letters), 'letter folder')}",
    )


def check_root_group(root: Path) -> CheckResult:
    """The root's group can write it: Open Dental's workstations reach the tree through that
    group (the share account), so the folders and files we make must be theirs to change too.
    The setgid bit makes new folders take the root's group instead of ours."""
    name = "A-to-Z root group"
    try:
        info = root.stat()
    except OSError as exc:
        return _not_checked(name, f"{root} cannot be examined: {exc.strerror}")
    if not stat.S_ISDIR(info.st_mode):
        return _not_checked(name, "the A-to-Z root is not a directory")
    group = group_name(info.st_gid)
    mode = stat.filemode(info.st_mode)
    if info.st_mode & (stat.S_IWGRP | stat.S_IXGRP) != stat.S_IWGRP | stat.S_IXGRP:
        return CheckResult(
            name,
            ok=False,
            detail=f"{root} is {mode}: its group {group} cannot write in it, so Open Dental's "
            "workstations (through that group) could not change what we create there: run "
            f"`chmod g+rwxs {root}` (and `chmod -R g+rwX {root}` for what is in it; on a CIFS "
            "mount set dir_mode= and file_mode= instead)",
        )
    setgid = (
        "setgid, so new folders keep the group"
        if info.st_mode & stat.S_ISGID
        else f"not setgid: `chmod g+s {root}` makes new folders keep the group"
    )
    return CheckResult(name, ok=True, detail=f"{root} is {mode}, group {group} can write; {setgid}")


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def check_links(root: Path) -> CheckResult:
    """No letter folder, patient folder or ``Thumbnails/`` folder is a link: the service never
    follows one (it could lead out of the tree), so what is behind it is never registered,
    sent or written to."""
    name = "links in the A-to-Z tree"
    links: list[str] = []

    def unlisted(entry: FolderEntry, exc: OSError) -> None:
        del entry  # the error names the link relative to the root
        if isinstance(exc, LinkRefusedError):
            links.append(exc.relative)

    try:
        folders = list(walk_folders(root, on_unlisted=unlisted))
    except RootUnusableError:
        return _not_checked(name, "the A-to-Z root is unusable")
    for folder in folders:
        thumbnails = os.path.join(folder.path, THUMBNAILS_DIR)  # noqa: PTH118 - strings
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.lstat(thumbnails).st_mode):
                links.append(f"{folder.letter}/{folder.name}/{THUMBNAILS_DIR}")
    if links:
        shown = ", ".join(sorted(links)[:SHOWN])
        return CheckResult(
            name,
            ok=False,
            detail=f"{len(links)} {'folder is a link' if len(links) == 1 else 'folders are links'}"
            f" ({shown}): the service refuses them; replace each with the real folder",
        )
    return CheckResult(name, ok=True, detail="no letter, patient or Thumbnails folder is a link")


def check_state_dir(state: Path) -> CheckResult:
    """The state directory exists and is writable, or its nearest existing parent is."""
    name = "state directory"
    if state.exists():
        if not state.is_dir():
            return CheckResult(
                name, ok=False, detail=f"{state} is not a directory: set state_dir elsewhere"
            )
        if not os.access(state, os.W_OK | os.X_OK):
            return CheckResult(
                name,
                ok=False,
                detail=f"{state} is not writable by user {current_user()}: chown it to that "
                "user, or set state_dir",
            )
        return CheckResult(name, ok=True, detail=f"{state} is writable")
    parent = next((p for p in state.parents if p.exists()), None)
    if parent is not None and parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return CheckResult(
            name, ok=True, detail=f"{state} will be created (in {parent}, which is writable)"
        )
    return CheckResult(
        name,
        ok=False,
        detail=f"{state} does not exist and user {current_user()} cannot create it "
        f"(in {parent}): create it and chown it to that user, or set state_dir",
    )


def check_inbox(inbox: Path, root: Path) -> CheckResult:
    """An inbox folder exists, is a folder this user can write in (files are moved out of it),
    and neither it (below the A-to-Z root) nor its own subfolders are links: the inbox refuses
    them. One outside the root may itself be reached through a link (a mount)."""
    # The inbox package (and Pillow with it) only where an inbox is configured.
    from atoz_watcher.inbox.place import OWN_FOLDERS  # noqa: PLC0415

    name = f"inbox {inbox}"
    try:
        inside = inbox.relative_to(root).parts
    except ValueError:
        inside = None
    where = "inside the A-to-Z root" if inside is not None else "outside the A-to-Z root"
    try:
        info = inbox.lstat()
    except FileNotFoundError:
        return CheckResult(
            name,
            ok=False,
            detail=f"does not exist: create it for user {current_user()} (the folder "
            "the scanner saves to), or fix [[inbox.folders]] path",
        )
    except OSError as exc:
        return CheckResult(name, ok=False, detail=f"cannot be examined: {exc.strerror}")
    steps = [root.joinpath(*inside[: n + 1]) for n in range(len(inside))] if inside else []
    links = [str(step) for step in steps if _is_link(step)]
    links += [str(inbox / own) for own in OWN_FOLDERS if _is_link(inbox / own)]
    if links:
        return CheckResult(
            name,
            ok=False,
            detail=f"{', '.join(links[:SHOWN])}: a link, which the inbox refuses; replace it "
            "with the real folder",
        )
    if not stat.S_ISDIR(info.st_mode) and not inbox.is_dir():  # a link only outside the root
        return CheckResult(name, ok=False, detail="not a folder: fix [[inbox.folders]] path")
    if not os.access(inbox, os.R_OK | os.W_OK | os.X_OK):
        return CheckResult(
            name,
            ok=False,
            detail=f"user {current_user()} cannot read and write in it: give that "
            "user (or its group) rwx",
        )
    return CheckResult(name, ok=True, detail=f"a writable folder {where}")


def check_ui(ui: UiSettings, api: ApiSettings) -> CheckResult:
    """The front-desk page someone can log in to: at least one ``[[ui.users]]``."""
    where = f"http://{api.host}:{api.port}/ui/"
    if not ui.users:
        return CheckResult(
            "front-desk page",
            ok=False,
            detail=f"no [[ui.users]], so nobody can log in at {where}: add one with a "
            "password_hash from `atoz-watcher hash-password`",
        )
    staff = sum(user.role == "staff" for user in ui.users)
    detail = f"{plural(len(ui.users), 'user')} ({staff} staff) may log in at {where}"
    if not ui.secure_cookies and not _is_loopback(api.host):
        detail += (
            " (over plain HTTP on the network: serve it through a TLS proxy and set "
            "ui.secure_cookies = true)"
        )
    return CheckResult("front-desk page", ok=True, detail=detail)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(path.lstat().st_mode)
    except OSError:
        return False


def current_user() -> str:
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


# -- filesystem -------------------------------------------------------------------------------


def check_filesystem(filesystem: Filesystem, *, mode: Mode) -> CheckResult:
    """The filesystem under the A-to-Z root, and the watcher mode that fits it."""
    name = "filesystem"
    where = f"{filesystem.type} ({filesystem.kind}"
    where += f", {filesystem.source} on {filesystem.mount_point})" if filesystem.source else ")"
    if filesystem.kind == "unknown":
        return CheckResult(
            name, ok=True, detail="unknown (/proc/self/mountinfo unreadable); auto watches natively"
        )
    if filesystem.inotify_sees_all:
        if mode == "smb":
            return CheckResult(
                name,
                ok=True,
                detail=f"{where}: native fits (inotify hears every write on a local disk); "
                'mode "smb" works but is only needed for a share mounted from Windows',
            )
        return CheckResult(name, ok=True, detail=f"{where}: native fits; mode {mode}")
    fits = (
        "smb (the server's change notifications, [watcher.smb]), else polling"
        if filesystem.is_smb
        else "polling"
    )
    found = (
        f"{where}: inotify does not hear what other machines write here; the mode that fits: {fits}"
    )
    if mode == "native":
        return CheckResult(
            name, ok=False, detail=f'{found}; set watcher.mode = "auto" (polls here) or "smb"'
        )
    chosen = "auto polls here" if mode == "auto" else f"mode {mode}"
    return CheckResult(name, ok=True, detail=f"{found}; {chosen}")


def check_smb(settings: Settings) -> CheckResult:
    """Mode "smb": log in to the share and subscribe to its change notifications, once, within
    the configured deadline. The detail never holds the password."""
    # Imported here: smbprotocol is loaded for the smb mode only.
    from atoz_watcher.watch.handler import QueueingHandler  # noqa: PLC0415
    from atoz_watcher.watch.smb import (  # noqa: PLC0415
        NotificationsRefusedError,
        ShareWatcher,
        read_password,
    )

    name = "smb notifications"
    smb = settings.watcher.smb
    if smb is None:  # the settings' validator makes this impossible
        return CheckResult(name, ok=False, detail="[watcher.smb] is missing")
    root = str(settings.atoz_path)
    try:
        watcher = ShareWatcher(
            smb,
            read_password(smb.password_file),
            root,
            QueueingHandler(root, queue.SimpleQueue(), IgnoreRules(())),
            on_overflow=lambda: None,
            on_resubscribed=lambda: None,
        )
        watcher.start()
    except NotificationsRefusedError as exc:
        return CheckResult(name, ok=True, detail=f"{exc}: the daemon will poll instead")
    except AtozError as exc:
        return CheckResult(name, ok=False, detail=str(exc))
    watcher.stop()
    watcher.join(smb.timeout)
    return CheckResult(
        name, ok=True, detail=f"{watcher.where}: logged in as {smb.username!r}, subscribed"
    )


# -- inotify ----------------------------------------------------------------------------------


def count_folders(root: Path, *, max_depth: int = PATIENT) -> tuple[int, int]:
    """Folders native watching puts an inotify watch on: ``root`` and the folders down to
    ``max_depth`` below it (letter and patient folders), not following symlinks; and how many
    of them could not be listed."""
    folders = unlistable = 0
    pending = [(os.fspath(root), 0)]
    while pending:
        path, depth = pending.pop()
        folders += 1
        if depth >= max_depth:
            continue
        try:
            with os.scandir(path) as entries:
                pending.extend((entry.path, depth + 1) for entry in entries if is_folder(entry))
        except OSError:
            unlistable += 1
    return folders, unlistable


def watches_needed(folders: int) -> int:
    return folders + max(MIN_HEADROOM, folders // 4)


def suggested_max_watches(needed: int) -> int:
    """524288, or twice what is needed rounded up to a multiple of 65536 if that is more."""
    step = 65_536
    return max(RECOMMENDED_MAX_USER_WATCHES, -(-2 * needed // step) * step)


def check_inotify(root: Path, *, mode: Mode, proc: Path = INOTIFY_PROC) -> list[CheckResult]:
    """The "inotify watches" (one per folder) and "inotify instances" checks."""
    if mode in {"polling", "smb"}:
        return [
            CheckResult("inotify watches", ok=True, detail=f"not used ({mode})"),
            CheckResult("inotify instances", ok=True, detail=f"not used ({mode})"),
        ]
    return [_check_watches(root, mode, proc), _check_instances(mode, proc)]


def _read_limit(path: Path) -> int | str:
    """The number in a /proc/sys file, or why it could not be read."""
    try:
        return int(path.read_text(encoding="ascii").strip())
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    except ValueError:
        return f"{path} does not hold a number"


def _unreadable(name: str, mode: str, reason: str) -> CheckResult:
    # In auto mode the daemon polls when inotify is unusable; native mode would not start.
    if mode == "auto":
        return CheckResult(name, ok=True, detail=f"{reason}; auto mode will poll if needed")
    return CheckResult(
        name, ok=False, detail=f'{reason}; native mode needs inotify (or set mode = "polling")'
    )


def _check_watches(root: Path, mode: str, proc: Path) -> CheckResult:
    name = "inotify watches"
    limit = _read_limit(proc / "max_user_watches")
    if isinstance(limit, str):
        return _unreadable(name, mode, limit)
    if not root.is_dir():
        return _not_checked(name, "the A-to-Z root is unusable")
    folders, unlistable = count_folders(root)
    needed = watches_needed(folders)
    unlisted = f" ({unlistable} could not be listed)" if unlistable else ""
    found = (
        f"{plural(folders, 'folder')} to watch{unlisted}, fs.inotify.max_user_watches is {limit}"
    )
    if limit < needed:
        value = suggested_max_watches(needed)
        setting = f"fs.inotify.max_user_watches={value}"
        return CheckResult(
            name,
            ok=False,
            detail=f"{found}, {needed} needed (one per folder, plus room to grow): run "
            f"`sysctl -w {setting}` and persist it with "
            f'`echo {setting} > {SYSCTL_CONF}` (or set watcher.mode = "polling")',
        )
    return CheckResult(name, ok=True, detail=found)


def _check_instances(mode: str, proc: Path) -> CheckResult:
    name = "inotify instances"
    limit = _read_limit(proc / "max_user_instances")
    if isinstance(limit, str):
        return _unreadable(name, mode, limit)
    found = f"fs.inotify.max_user_instances is {limit}"
    if limit < 1:
        setting = "fs.inotify.max_user_instances=128"
        return CheckResult(
            name,
            ok=False,
            detail=f"{found}: run `sysctl -w {setting}` and persist it with "
            f"`echo {setting} > {SYSCTL_CONF}`",
        )
    return CheckResult(name, ok=True, detail=found)
