"""The commands. The only place that builds Settings, configures logging and picks exit codes."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pydantic import SecretStr
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import DBAPIError

from atoz_watcher.app.cli_args import build_parser
from atoz_watcher.app.reports import RescanReport, ThumbnailReport
from atoz_watcher.app.wiring import Components
from atoz_watcher.app.wording import plural
from atoz_watcher.config.sections import MetricsSettings, ScanSettings, WatcherSettings
from atoz_watcher.config.settings import SQLITE_FILE_NAME, Settings, load_settings
from atoz_watcher.db import queries
from atoz_watcher.db.engine import add_default_categories, create_missing_tables, make_engine
from atoz_watcher.db.models import IMG_TYPE_NAMES, REQUIRED_TABLES
from atoz_watcher.errors import (
    AtozError,
    ConfigError,
    DatabaseUnavailableError,
    NoImageCategoryError,
    NoSuchPatientError,
    RootUnusableError,
)
from atoz_watcher.ingest.registrar import Registrar
from atoz_watcher.ingest.rescan import Rescanner, Summary
from atoz_watcher.rules.ignore import IgnoreRules
from atoz_watcher.rules.layout import folder_name, patient_dir
from atoz_watcher.system.journal import Journal
from atoz_watcher.system.logging import configure_logging

# What only some commands need (the daemon, thumbnails, metrics, the demo) is imported in the
# command that runs it: every command pays for the imports at the top, and `atoz-watcher
# rescan`'s run is short enough for them to count (bench/rescan.py, a fresh process).
if TYPE_CHECKING:
    from atoz_watcher.api import ApiServer
    from atoz_watcher.app.demo import DemoTree
    from atoz_watcher.imaging.backfill import BackfillSummary
    from atoz_watcher.system.metrics import Metrics, MetricsServer

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_ROOT = 4
EXIT_NO_CATEGORY = 5
# How often `atoz-watcher api` checks that its server thread is still serving.
API_CHECK_S = 1.0
# Commands that print one line per file and a summary: their own log events stay at warnings
# unless --log-level asks for more; for rescan and thumbnails, --log-level warning or error
# leaves only the summary (materialize lists its few rows in its summary).
PER_FILE_COMMANDS = frozenset({"rescan", "thumbnails", "materialize"})
QUIET_LEVELS = frozenset({"warning", "error"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Commands that print a summary keep per-file events out of the way unless asked.
    quiet = args.command in PER_FILE_COMMANDS | {"check", "init-db"} or (
        args.command == "demo" and not args.watch
    )
    configure_logging(level=args.log_level or ("warning" if quiet else "info"))
    per_file = args.log_level not in QUIET_LEVELS
    try:
        if args.command == "demo":
            return run_demo(args.dir, sys.stdout, watch=args.watch)
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
    from atoz_watcher.app.check import current_user  # noqa: PLC0415 - see TYPE_CHECKING above

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


def dispatch(
    args: argparse.Namespace, settings: Settings, engine: Engine, *, per_file: bool = True
) -> int:
    commands: dict[str, Callable[[], int]] = {
        "init-db": lambda: run_init_db(engine, sys.stdout),
        "run": lambda: run_daemon(settings, engine),
        "api": lambda: run_api(settings, engine),
        "check": lambda: run_check(settings, engine, sys.stdout),
        "rescan": lambda: run_rescan(
            settings,
            engine,
            pat_num=args.patient,
            dry_run=args.dry_run,
            out=sys.stdout,
            per_file=per_file,
        ),
        "materialize": lambda: run_materialize_once(settings, engine, sys.stdout),
        "thumbnails": lambda: run_thumbnails(
            settings,
            engine,
            pat_num=args.patient,
            force=args.force,
            out=sys.stdout,
            per_file=per_file,
        ),
    }
    return commands[args.command]()


def run_check(settings: Settings, engine: Engine, out: TextIO) -> int:
    from atoz_watcher.app.check import format_results, run_checks  # noqa: PLC0415 - see TYPE_CHECKING

    results = run_checks(settings, engine)
    print(format_results(results), file=out)
    return EXIT_OK if all(r.ok for r in results) else 1


def exit_code(exc: AtozError) -> int:
    """The exit code a script or systemd can tell apart, by what went wrong."""
    codes: tuple[tuple[type[AtozError], int], ...] = (
        (ConfigError, EXIT_CONFIG),
        (NoSuchPatientError, EXIT_CONFIG),
        (RootUnusableError, EXIT_ROOT),
        (NoImageCategoryError, EXIT_NO_CATEGORY),
        (DatabaseUnavailableError, EXIT_DATABASE),
    )
    return next((code for kind, code in codes if isinstance(exc, kind)), EXIT_FAILED)


def _fail(code: int, message: str) -> int:
    print(f"atoz-watcher: {message}", file=sys.stderr)
    return code


@contextmanager
def exit_on_signals(handle_exit: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``handle_exit``; the old handlers come back afterwards."""
    # Signals can only be listened to from the main thread.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def on_signal(_signum: int, _frame: object) -> None:
        handle_exit()

    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_daemon(settings: Settings, engine: Engine) -> int:
    if settings.storage == "InDatabase":
        raise ConfigError("storage: InDatabase has no A-to-Z folder to watch")
    from atoz_watcher.app.daemon import Daemon  # noqa: PLC0415 - see TYPE_CHECKING above
    from atoz_watcher.system.sdnotify import Notifier, watchdog_interval  # noqa: PLC0415

    _require_tables(engine)
    if not settings.atoz_path.is_dir():
        raise RootUnusableError(settings.atoz_path, "it does not exist or is not a folder")
    components = Components.from_settings(settings, engine)
    notifier = Notifier(os.environ.get("NOTIFY_SOCKET"))
    daemon = Daemon(
        components,
        notifier=notifier,
        watchdog_interval_s=watchdog_interval(os.environ, os.getpid()),
    )
    if settings.api.enabled:
        _require_api_keys(settings)
    with ExitStack() as stack:
        stack.callback(notifier.close)
        if settings.metrics.enabled:
            stack.callback(serve_metrics(components.metrics, settings.metrics).close)
        stack.enter_context(exit_on_signals(daemon.handle_exit))
        if settings.api.enabled:
            api = _api_server(components, on_placeholder=daemon.materializer.wake)
            api.start()
            # Stopped after the daemon: requests in flight finish against a live database.
            stack.callback(api.stop)
        daemon.run()
    return EXIT_OK


def serve_metrics(metrics: Metrics, settings: MetricsSettings) -> MetricsServer:
    """The /metrics endpoint; a port in use is a configuration error naming the keys."""
    try:
        return metrics.serve(settings.host, settings.port)
    except OSError as exc:
        raise ConfigError(
            f"metrics.host/metrics.port: cannot listen on {settings.host}:{settings.port}: "
            f"{exc.strerror or exc}; stop what uses it, set another metrics.port, or set "
            "metrics.enabled = false"
        ) from None


def run_api(settings: Settings, engine: Engine) -> int:
    """``atoz-watcher api``: the Documents API alone, until SIGTERM or SIGINT."""
    _require_api_keys(settings)
    _require_tables(engine)
    if settings.storage == "LocalAtoZ" and not settings.atoz_path.is_dir():
        raise RootUnusableError(settings.atoz_path, "it does not exist or is not a folder")
    stop = threading.Event()
    with exit_on_signals(stop.set):
        server = _api_server(Components.from_settings(settings, engine))
        server.start()
        try:
            while not stop.wait(API_CHECK_S):
                if not server.is_alive():
                    raise AtozError("the API server stopped unexpectedly")
        finally:
            server.stop()
    return EXIT_OK


def _api_server(
    components: Components, *, on_placeholder: Callable[[], None] | None = None
) -> ApiServer:
    # FastAPI and uvicorn are imported only where the API runs: they cost every other command
    # (and a daemon without the API) about 15 MB and a third of a second.
    from atoz_watcher.api import ApiServer  # noqa: PLC0415

    app = components.api(on_placeholder=on_placeholder)
    api = components.settings.api
    return ApiServer(app, host=api.host, port=api.port)


def _require_api_keys(settings: Settings) -> None:
    if not settings.api.keys:
        raise ConfigError(
            "api.keys: no [[api.keys]] pair is configured, so the API would refuse every "
            "request; add one with developer_key and customer_key"
        )


def run_init_db(engine: Engine, out: TextIO) -> int:
    created = create_missing_tables(engine)
    with engine.begin() as conn:
        categories = add_default_categories(conn)
    print(f"tables created: {', '.join(created) or 'none (all present)'}", file=out)
    print(f"image categories added: {', '.join(categories) or 'none (some exist)'}", file=out)
    return EXIT_OK


def _require_tables(engine: Engine) -> None:
    present = set(inspect(engine).get_table_names())
    missing = [name for name in REQUIRED_TABLES if name not in present]
    if missing:
        raise ConfigError(
            f"the database lacks the table(s) {', '.join(missing)}: run `atoz-watcher init-db`, "
            "or point database_url at Open Dental's database"
        )


def run_rescan(
    settings: Settings,
    engine: Engine,
    *,
    pat_num: int | None,
    dry_run: bool,
    out: TextIO,
    per_file: bool = True,
) -> int:
    if settings.storage == "InDatabase":
        raise ConfigError(
            "storage: InDatabase keeps files in document.RawBase64; there is no A-to-Z folder "
            'to import from (set storage = "LocalAtoZ" if Open Dental uses the folder)'
        )
    _require_tables(engine)
    root = settings.atoz_path
    folder = None if pat_num is None else _patient_folder(engine, root, pat_num)
    with engine.connect() as conn:
        categories = {c.def_num: c.name for c in queries.image_categories(conn)}
    registrar = Components.from_settings(settings, engine).registrar
    min_age_s = settings.watcher.open_settle_seconds
    report = RescanReport(out, categories, per_file=per_file, min_age_s=min_age_s)
    with ExitStack() as stack:
        progress = None
        if sys.stderr.isatty():
            bar = ProgressBar(sys.stderr)
            stack.callback(bar.close)
            progress = bar.update
            report.before_line = bar.clear
        scanner = Rescanner(
            engine,
            registrar,
            root,
            batch_size=settings.scan.batch_size,
            progress=progress,
            report=report,
            ignore=IgnoreRules(settings.watcher.ignore),
            # A file a scanner is still writing is left for the next rescan (or the daemon).
            min_age_s=min_age_s,
            keep=False,  # one run: FileNames read a letter folder at a time
        )
        summary = scanner.run(pat_num=pat_num, dry_run=dry_run)
    print_summary(summary, out, dry_run=dry_run)
    lines = report.deferred_lines()
    if folder is not None and summary.folders == 0:
        lines.append(f"patient {pat_num} has no folder yet: {folder} does not exist")
    if lines:
        print("\n".join(lines), file=out)
    return EXIT_OK


def _patient_folder(engine: Engine, root: Path, pat_num: int) -> Path:
    """The folder of patient ``pat_num`` (its ImageFolder, or the one Open Dental would make);
    NoSuchPatientError when there is no such patient."""
    with engine.connect() as conn:
        row = queries.patient(conn, pat_num=pat_num)
    if row is None:
        raise NoSuchPatientError(pat_num)
    return patient_dir(root, row.image_folder or folder_name(row.lname, row.fname, pat_num))


def print_summary(summary: Summary, out: TextIO, *, dry_run: bool) -> None:
    verb = "would register" if dry_run else "registered"
    lines = [
        f"folders: {summary.folders}",
        f"files seen: {summary.files_seen}",
        f"{verb}: {summary.registered}",
        f"already registered: {summary.already_known}",
    ]
    skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.skipped.items()))
    lines.append(f"skipped: {sum(summary.skipped.values())}" + (f" ({skipped})" if skipped else ""))
    if summary.adopted:
        adopted = "would adopt" if dry_run else "adopted"
        lines.append(f"folders {adopted}: {len(summary.adopted)}")
    lines.append(f"unmatched folders: {len(summary.unmatched)}")
    lines.extend(f"  {folder} ({reason})" for folder, reason in summary.unmatched)
    print("\n".join(lines), file=out)


def run_materialize_once(settings: Settings, engine: Engine, out: TextIO) -> int:
    """``atoz-watcher materialize``: one pass; exit 1 when some placeholder failed."""
    from atoz_watcher.app.commands.materialize import run_materialize  # noqa: PLC0415 - see TYPE_CHECKING

    _require_tables(engine)
    stop = threading.Event()
    with exit_on_signals(stop.set):
        return run_materialize(
            Components.from_settings(settings, engine), out, should_stop=stop.is_set
        )


def run_thumbnails(
    settings: Settings,
    engine: Engine,
    *,
    pat_num: int | None,
    force: bool,
    out: TextIO,
    per_file: bool = True,
) -> int:
    if settings.storage == "InDatabase":
        raise ConfigError(
            "storage: InDatabase keeps files in document.RawBase64; thumbnails are files in "
            "the A-to-Z folder's Thumbnails/ subfolders, made for LocalAtoZ only"
        )
    _require_tables(engine)
    if pat_num is not None:
        _patient_folder(engine, settings.atoz_path, pat_num)
    from atoz_watcher.imaging.backfill import Backfill  # noqa: PLC0415 - see TYPE_CHECKING above
    from atoz_watcher.imaging.queue import default_workers  # noqa: PLC0415

    backfill = Backfill(
        engine,
        Components.from_settings(settings, engine).renderer,
        settings.atoz_path,
        workers=default_workers(settings.thumbnails.workers),
    )
    stop = threading.Event()
    report = ThumbnailReport(out) if per_file else None
    with ExitStack() as stack:
        progress = None
        if sys.stderr.isatty():
            bar = ProgressBar(sys.stderr, label="documents")
            stack.callback(bar.close)
            progress = bar.update
            if report is not None:
                report.before_line = bar.clear
        stack.enter_context(exit_on_signals(stop.set))
        summary = backfill.run(
            pat_num=pat_num,
            force=force,
            progress=progress,
            report=report,
            should_stop=stop.is_set,
        )
    print_thumbnail_summary(summary, out, stopped=stop.is_set())
    return EXIT_OK


def print_thumbnail_summary(summary: BackfillSummary, out: TextIO, *, stopped: bool) -> None:
    from atoz_watcher.imaging.jobs import Outcome  # noqa: PLC0415 - see TYPE_CHECKING above

    outcomes = summary.outcomes
    lines = [
        f"documents: {summary.documents}" + (" (stopped early)" if stopped else ""),
        f"thumbnails made: {outcomes[Outcome.MADE]}",
        f"already fresh: {outcomes[Outcome.FRESH]}",
        f"no thumbnail (not an image): {summary.not_images}",
        f"file missing: {outcomes[Outcome.MISSING]}",
        f"failed: {outcomes[Outcome.FAILED]}",
    ]
    lines.extend(f"  {path}" for path in summary.failed)
    if summary.unsafe:
        lines.append(f"unsafe names, skipped: {len(summary.unsafe)}")
        lines.extend(f"  {reason}" for reason in summary.unsafe)
    print("\n".join(lines), file=out)


class ProgressBar:
    """A one-line progress bar on a terminal, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, *, label: str = "folders", width: int = 30) -> None:
        self._stream = stream
        self._label = label
        self._width = width
        self._last = 0.0
        self._shown = False

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:  # noqa: PLR2004
            return
        self._last = now
        filled = self._width * done // total if total else self._width
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{total}")
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Blank the bar's line so that a line printed now starts clean; the next update
        draws the bar again."""
        if self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()
            self._shown = False
            self._last = 0.0

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


def print_demo_tree(tree: DemoTree, url: str, out: TextIO) -> None:
    """Where the demo is: the folder, the database, and each patient's folder in full."""
    print(f"A-to-Z folder: {tree.root}", file=out)
    print(f"database: {url}", file=out)
    print(f"{plural(len(tree.patients), 'patient')}, and their folders:", file=out)
    for name, pat_num in tree.patients.items():
        print(f"  #{pat_num:<3} {patient_dir(tree.root, name)}", file=out)


def run_demo(directory: Path | None, out: TextIO, *, watch: bool = False) -> int:
    from atoz_watcher.app.demo import build_demo, existing_demo, registered_rows  # noqa: PLC0415

    with ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atoz-demo-")))
        directory = directory.resolve()  # full paths, to paste into a file manager
        # Never from Settings: an ATOZ_DATABASE_URL in the environment must not send sample
        # patients into a real database.
        root = directory / "OpenDentImages"
        state = directory / "state"
        url = f"sqlite:///{state / SQLITE_FILE_NAME}"
        engine = make_engine(url)
        stack.callback(engine.dispose)
        tree = existing_demo(engine, root)
        if tree is not None:
            print(f"reusing the sample data in {directory} (delete it for a fresh start)", file=out)
        else:
            tree = build_demo(engine, root)
        print_demo_tree(tree, url, out)
        registrar = Registrar(engine, Journal(state / "journal"))
        scanner = Rescanner(engine, registrar, root, batch_size=ScanSettings().batch_size)
        summary = scanner.run()
        print("\nregistered documents:", file=out)
        print(
            f"  {'DocNum':>6}  {'PatNum':>6}  {'category':<14} {'ImgType':<10} FileName", file=out
        )
        for doc_num, pat_num, file_name, category, img_type in registered_rows(engine):
            kind = IMG_TYPE_NAMES[img_type] if img_type < len(IMG_TYPE_NAMES) else str(img_type)
            row = f"{doc_num:>6}  {pat_num:>6}  {category:<14} {kind:<10} {file_name}"
            print(f"  {row}", file=out)
        print(file=out)
        print_summary(summary, out, dry_run=False)
        if watch:
            print(f"\nwatching {root}: drop a file into a patient folder (Ctrl-C stops)", file=out)
            out.flush()
            demo_settings = Settings.model_construct(
                atoz_path=root,
                database_url=SecretStr(url),
                storage="LocalAtoZ",
                state_dir=state,
                scan=ScanSettings(),
                watcher=WatcherSettings(),
                metrics=MetricsSettings(enabled=False),
            )
            from atoz_watcher.app.daemon import Daemon  # noqa: PLC0415 - see TYPE_CHECKING above
            from atoz_watcher.system.sdnotify import Notifier  # noqa: PLC0415

            daemon = Daemon(
                Components.from_settings(demo_settings, engine), notifier=Notifier(None)
            )
            with exit_on_signals(daemon.handle_exit):
                daemon.run()
    return EXIT_OK
