"""The command line: parse, build Settings, configure logging, dispatch, pick the exit code.

The only place that builds Settings; each command's body is in ``app.commands``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from atoz_watcher.app.cli_args import build_parser
from atoz_watcher.app.commands.common import EXIT_FAILED
from atoz_watcher.config.settings import Settings, load_settings
from atoz_watcher.db.engine import make_engine
from atoz_watcher.errors import (
    ArgumentError,
    AtozError,
    ConfigError,
    DatabaseUnavailableError,
    NoImageCategoryError,
    NoSuchPatientError,
    RootUnusableError,
)
from atoz_watcher.system.logging import configure_logging

# Each command's module is imported when that command runs (dispatch), and what only some
# commands need (the web stack, Pillow, the cover sheet's codes) inside the command that runs
# it: every command pays for the imports at the top, and `atoz-watcher rescan`'s run is short
# enough for them to count (bench/rescan.py, a fresh process).

# A command returns EXIT_OK or EXIT_FAILED (app.commands.common); what it raises is mapped
# to one of these by exit_code.
EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_ROOT = 4
EXIT_NO_CATEGORY = 5
# Commands that print one line per file and a summary: their own log events stay at warnings
# unless --log-level asks for more; for rescan and thumbnails, --log-level warning or error
# leaves only the summary (materialize lists its few rows in its summary).
PER_FILE_COMMANDS = frozenset({"rescan", "thumbnails", "materialize"})
QUIET_LEVELS = frozenset({"warning", "error"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Commands that print a summary keep per-file events out of the way unless asked.
    quiet = args.command in PER_FILE_COMMANDS | {
        "check",
        "init-db",
        "cover-sheet",
        "inbox",
        "hash-password",
    } or (args.command == "demo" and not args.watch)
    configure_logging(level=args.log_level or ("warning" if quiet else "info"))
    per_file = args.log_level not in QUIET_LEVELS
    try:
        if args.command == "demo":
            from atoz_watcher.app.commands.demo import run_demo

            return run_demo(args.dir, sys.stdout, watch=args.watch)
        if args.command == "hash-password":
            from atoz_watcher.app.commands.hash_password import run_hash_password

            return run_hash_password(sys.stdin, sys.stdout)
        settings = load_settings(args.config, os.environ)
        embedded = settings.database_url.get_secret_value() == ""
        if needs_state_dir(args, embedded=embedded):
            require_state_dir(settings.state_path)
        try:
            engine = make_engine(settings.db_url, busy_timeout_s=settings.scan.lock_timeout)
        except OSError as exc:  # the folder of a SQLite file could not be made
            key = "state_dir" if embedded else "database_url"
            raise ConfigError(
                f"{key}: cannot create the folder of the SQLite file: {exc.strerror}: "
                f"{exc.filename}"
            ) from None
        try:
            return dispatch(args, settings, engine, per_file=per_file)
        finally:
            engine.dispose()
    except DBAPIError as exc:
        return _fail(EXIT_DATABASE, f"database unreachable or refused: {exc.orig}")
    except AtozError as exc:
        return _fail(exit_code(exc), str(exc))
    except OSError as exc:
        # Anything the file system refused that no check above foresaw: still one line.
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(EXIT_FAILED, f"{exc.strerror or exc}{where}")


def needs_state_dir(args: argparse.Namespace, *, embedded: bool) -> bool:
    """Commands that write the journal, or open the embedded database; `check` reports on the
    state directory instead of stopping at it."""
    if args.command == "check":
        return False
    return embedded or args.command == "run" or (args.command == "rescan" and not args.dry_run)


def require_state_dir(state: Path) -> None:
    """The state directory exists (made if need be) and this user can write in it."""
    from atoz_watcher.app.check import current_user

    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"state_dir: cannot create {state}: {exc.strerror}; create it for user "
            f"{current_user()}, or set state_dir (ATOZ_STATE_DIR)"
        ) from None
    if not os.access(state, os.W_OK | os.X_OK):
        raise ConfigError(
            f"state_dir: {state} is not writable by user {current_user()}: chown it to that "
            "user, or set state_dir (ATOZ_STATE_DIR)"
        )


def dispatch(  # noqa: PLR0911 - one return a command
    args: argparse.Namespace, settings: Settings, engine: Engine, *, per_file: bool = True
) -> int:
    """Run the command ``args`` names, importing its module only now (see the note at the
    top)."""
    match args.command:
        case "init-db":
            from atoz_watcher.app.commands.init_db import run_init_db

            return run_init_db(engine, sys.stdout)
        case "run":
            from atoz_watcher.app.commands.run import run_daemon

            return run_daemon(settings, engine)
        case "api":
            from atoz_watcher.app.commands.api import run_api

            return run_api(settings, engine)
        case "check":
            from atoz_watcher.app.commands.check import run_check

            return run_check(settings, engine, sys.stdout)
        case "rescan":
            from atoz_watcher.app.commands.rescan import run_rescan

            return run_rescan(
                settings,
                engine,
                pat_num=args.patient,
                dry_run=args.dry_run,
                out=sys.stdout,
                per_file=per_file,
            )
        case "materialize":
            from atoz_watcher.app.commands.materialize import run_materialize_once

            return run_materialize_once(settings, engine, sys.stdout)
        case "cover-sheet":
            from atoz_watcher.app.commands.cover_sheet import CoverRequest, run_cover_sheet

            request = CoverRequest(
                pat_num=args.patient,
                category=args.category,
                out=args.out,
                paper=args.paper,
                force=args.force,
            )
            return run_cover_sheet(engine, request, stdout=sys.stdout)
        case "inbox":
            return _inbox(args, settings, engine)
        case "thumbnails":
            from atoz_watcher.app.commands.thumbnails import run_thumbnails

            return run_thumbnails(
                settings,
                engine,
                pat_num=args.patient,
                force=args.force,
                out=sys.stdout,
                per_file=per_file,
            )
    raise ArgumentError(f"unknown command: {args.command}")


def _inbox(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from atoz_watcher.app.commands.inbox import run_inbox_assign, run_inbox_list

    if args.inbox_command == "list":
        return run_inbox_list(settings, engine, sys.stdout, as_json=args.json)
    return run_inbox_assign(
        settings,
        engine,
        args.file,
        pat_num=args.patient,
        category=args.category,
        out=sys.stdout,
    )


def exit_code(exc: AtozError) -> int:
    """The exit code a script or systemd can tell apart, by what went wrong."""
    codes: tuple[tuple[type[AtozError], int], ...] = (
        (ConfigError, EXIT_CONFIG),
        (NoSuchPatientError, EXIT_CONFIG),
        (ArgumentError, EXIT_CONFIG),
        (RootUnusableError, EXIT_ROOT),
        (NoImageCategoryError, EXIT_NO_CATEGORY),
        (DatabaseUnavailableError, EXIT_DATABASE),
    )
    return next((code for kind, code in codes if isinstance(exc, kind)), EXIT_FAILED)


def _fail(code: int, message: str) -> int:
    print(f"atoz-watcher: {message}", file=sys.stderr)
    return code
