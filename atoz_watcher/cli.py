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

from atoz_watcher import __version__
from atoz_watcher.backfill import Backfill, BackfillSummary
from atoz_watcher.check import REQUIRED_TABLES, format_results, run_checks
from atoz_watcher.config import (
    SQLITE_FILE_NAME,
    MetricsSettings,
    ScanSettings,
    Settings,
    WatcherSettings,
    load_settings,
)
from atoz_watcher.daemon import Daemon
from atoz_watcher.db.engine import add_default_categories, create_missing_tables, make_engine
from atoz_watcher.db.models import IMG_TYPE_NAMES
from atoz_watcher.demo import build_demo, registered_rows
from atoz_watcher.errors import (
    AtozError,
    ConfigError,
    DatabaseUnavailableError,
    NoImageCategoryError,
    RootUnusableError,
)
from atoz_watcher.ignore import IgnoreRules
from atoz_watcher.journal import Journal
from atoz_watcher.logging import LEVELS, configure_logging
from atoz_watcher.materialize import run_materialize
from atoz_watcher.metrics import Metrics
from atoz_watcher.registrar import Plan, Registered, Registrar, Skipped
from atoz_watcher.rescan import Rescanner, Summary
from atoz_watcher.sdnotify import Notifier, watchdog_interval
from atoz_watcher.thumb_worker import default_workers
from atoz_watcher.thumbnailing import Outcome
from atoz_watcher.thumbs import Renderer

if TYPE_CHECKING:
    from atoz_watcher.api import ApiServer

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_ROOT = 4
EXIT_NO_CATEGORY = 5
# How often `atoz-watcher api` checks that its server thread is still serving.
API_CHECK_S = 1.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atoz-watcher",
        description="Registers files in Open Dental's A-to-Z folder as document rows.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", type=Path, help="TOML settings file (default: $ATOZ_CONFIG, if set)"
    )
    parser.add_argument("--log-level", choices=LEVELS, default=None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("run", help="watch the A-to-Z folder and register files as they land")
    commands.add_parser(
        "api", help="serve Open Dental's Documents API ([api] settings) until SIGTERM or Ctrl-C"
    )
    commands.add_parser(
        "check",
        help="check the config, database, A-to-Z root and inotify limits; say what is wrong",
    )
    commands.add_parser(
        "init-db", help="create missing tables; add image categories when there are none"
    )
    rescan = commands.add_parser("rescan", help="register every unknown file in the tree")
    rescan.add_argument("--patient", type=int, metavar="PATNUM", help="only this patient")
    rescan.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    commands.add_parser(
        "materialize",
        help="turn placeholder rows (SetByUrl, Upload by other clients) into files, once",
    )
    thumbnails = commands.add_parser(
        "thumbnails",
        help="build missing or stale thumbnails of registered documents",
    )
    thumbnails.add_argument("--patient", type=int, metavar="PATNUM", help="only this patient")
    thumbnails.add_argument(
        "--force", action="store_true", help="rebuild every thumbnail, fresh ones too"
    )
    demo = commands.add_parser(
        "demo", help="import a throw-away sample tree into a throw-away SQLite database"
    )
    demo.add_argument("--dir", type=Path, help="build the demo here and keep it (default: temp)")
    demo.add_argument(
        "--watch",
        action="store_true",
        help="then keep running the daemon on it: drop files into its folders (Ctrl-C stops)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Commands that print a summary keep per-file events out of the way unless asked.
    quiet = args.command in {"rescan", "thumbnails", "materialize"} or (
        args.command == "demo" and not args.watch
    )
    default_level = "warning" if quiet else "info"
    configure_logging(level=args.log_level or default_level)
    try:
        if args.command == "demo":
            return run_demo(args.dir, sys.stdout, watch=args.watch)
        settings = load_settings(args.config, os.environ)
        engine = make_engine(settings.db_url, busy_timeout_s=settings.scan.lock_timeout)
        try:
            return dispatch(args, settings, engine)
        finally:
            engine.dispose()
    except DBAPIError as exc:
        return _fail(EXIT_DATABASE, f"database unreachable or refused: {exc.orig}")
    except AtozError as exc:
        return _fail(exit_code(exc), str(exc))


def dispatch(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    commands: dict[str, Callable[[], int]] = {
        "init-db": lambda: run_init_db(engine, sys.stdout),
        "run": lambda: run_daemon(settings, engine),
        "api": lambda: run_api(settings, engine),
        "check": lambda: run_check(settings, engine, sys.stdout),
        "rescan": lambda: run_rescan(
            settings, engine, pat_num=args.patient, dry_run=args.dry_run, out=sys.stdout
        ),
        "materialize": lambda: run_materialize_once(settings, engine, sys.stdout),
        "thumbnails": lambda: run_thumbnails(
            settings, engine, pat_num=args.patient, force=args.force, out=sys.stdout
        ),
    }
    return commands[args.command]()


def run_check(settings: Settings, engine: Engine, out: TextIO) -> int:
    results = run_checks(settings, engine)
    print(format_results(results), file=out)
    return EXIT_OK if all(r.ok for r in results) else 1


def exit_code(exc: AtozError) -> int:
    """The exit code a script or systemd can tell apart, by what went wrong."""
    codes: tuple[tuple[type[AtozError], int], ...] = (
        (ConfigError, EXIT_CONFIG),
        (RootUnusableError, EXIT_ROOT),
        (NoImageCategoryError, EXIT_NO_CATEGORY),
        (DatabaseUnavailableError, EXIT_DATABASE),
    )
    return next((code for kind, code in codes if isinstance(exc, kind)), 1)


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
    _require_tables(engine)
    if not settings.atoz_path.is_dir():
        raise RootUnusableError(settings.atoz_path, "it does not exist or is not a folder")
    metrics = Metrics()
    notifier = Notifier(os.environ.get("NOTIFY_SOCKET"))
    daemon = Daemon(
        settings,
        engine,
        notifier=notifier,
        metrics=metrics,
        watchdog_interval_s=watchdog_interval(os.environ, os.getpid()),
    )
    if settings.api.enabled:
        _require_api_keys(settings)
    with ExitStack() as stack:
        stack.callback(notifier.close)
        if settings.metrics.enabled:
            server = metrics.serve(settings.metrics.host, settings.metrics.port)
            stack.callback(server.close)
        stack.enter_context(exit_on_signals(daemon.handle_exit))
        if settings.api.enabled:
            api = _api_server(settings, engine, on_placeholder=daemon.materializer.wake)
            api.start()
            # Stopped after the daemon: requests in flight finish against a live database.
            stack.callback(api.stop)
        daemon.run()
    return EXIT_OK


def run_api(settings: Settings, engine: Engine) -> int:
    """``atoz-watcher api``: the Documents API alone, until SIGTERM or SIGINT."""
    _require_api_keys(settings)
    _require_tables(engine)
    if settings.storage == "LocalAtoZ" and not settings.atoz_path.is_dir():
        raise RootUnusableError(settings.atoz_path, "it does not exist or is not a folder")
    stop = threading.Event()
    with exit_on_signals(stop.set):
        server = _api_server(settings, engine)
        server.start()
        try:
            while not stop.wait(API_CHECK_S):
                if not server.is_alive():
                    raise AtozError("the API server stopped unexpectedly")
        finally:
            server.stop()
    return EXIT_OK


def _api_server(
    settings: Settings, engine: Engine, *, on_placeholder: Callable[[], None] | None = None
) -> ApiServer:
    # FastAPI and uvicorn are imported only where the API runs: they cost every other command
    # (and a daemon without the API) about 15 MB and a third of a second.
    from atoz_watcher.api import ApiServer, create_app  # noqa: PLC0415

    app = create_app(settings, engine, on_placeholder=on_placeholder)
    return ApiServer(app, host=settings.api.host, port=settings.api.port)


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
    settings: Settings, engine: Engine, *, pat_num: int | None, dry_run: bool, out: TextIO
) -> int:
    if settings.storage == "InDatabase":
        raise ConfigError(
            "storage: InDatabase keeps files in document.RawBase64; there is no A-to-Z folder "
            'to import from (set storage = "LocalAtoZ" if Open Dental uses the folder)'
        )
    _require_tables(engine)
    root = settings.atoz_path
    registrar = Registrar(
        engine, Journal(settings.journal_dir), lock_timeout_s=settings.scan.lock_timeout
    )
    with ExitStack() as stack:
        progress = None
        if sys.stderr.isatty():
            bar = ProgressBar(sys.stderr)
            stack.callback(bar.close)
            progress = bar.update
        report = _plan_printer(root, out) if dry_run else None
        scanner = Rescanner(
            engine,
            registrar,
            root,
            batch_size=settings.scan.batch_size,
            progress=progress,
            report=report,
            ignore=IgnoreRules(settings.watcher.ignore),
            # A file a scanner is still writing is left for the next rescan (or the daemon).
            min_age_s=settings.watcher.open_settle_seconds,
            keep=False,  # one run: FileNames read a letter folder at a time
        )
        summary = scanner.run(pat_num=pat_num, dry_run=dry_run)
    print_summary(summary, out, dry_run=dry_run)
    return EXIT_OK


def _plan_printer(root: Path, out: TextIO) -> Callable[[Plan | Registered | Skipped], None]:
    def report(result: Plan | Registered | Skipped) -> None:
        if isinstance(result, Plan):
            source = result.candidate.path.relative_to(root)
            print(
                f"{source} -> patient {result.candidate.pat_num}, "
                f"category {result.category}, {result.final_name}",
                file=out,
            )

    return report


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
    _require_tables(engine)
    stop = threading.Event()
    with exit_on_signals(stop.set):
        return run_materialize(settings, engine, out, should_stop=stop.is_set)


def run_thumbnails(
    settings: Settings, engine: Engine, *, pat_num: int | None, force: bool, out: TextIO
) -> int:
    if settings.storage == "InDatabase":
        raise ConfigError(
            "storage: InDatabase keeps files in document.RawBase64; thumbnails are files in "
            "the A-to-Z folder's Thumbnails/ subfolders, made for LocalAtoZ only"
        )
    _require_tables(engine)
    renderer = Renderer(max_pixels=settings.thumbnails.max_pixels)
    backfill = Backfill(
        engine,
        renderer,
        settings.atoz_path,
        workers=default_workers(settings.thumbnails.workers),
    )
    stop = threading.Event()
    with ExitStack() as stack:
        progress = None
        if sys.stderr.isatty():
            bar = ProgressBar(sys.stderr, label="documents")
            stack.callback(bar.close)
            progress = bar.update
        stack.enter_context(exit_on_signals(stop.set))
        summary = backfill.run(
            pat_num=pat_num, force=force, progress=progress, should_stop=stop.is_set
        )
    print_thumbnail_summary(summary, out, stopped=stop.is_set())
    return EXIT_OK


def print_thumbnail_summary(summary: BackfillSummary, out: TextIO, *, stopped: bool) -> None:
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

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:  # noqa: PLR2004
            return
        self._last = now
        filled = self._width * done // total if total else self._width
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{total}")
        self._stream.flush()

    def close(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


def run_demo(directory: Path | None, out: TextIO, *, watch: bool = False) -> int:
    with ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atoz-demo-")))
        # Never from Settings: an ATOZ_DATABASE_URL in the environment must not send sample
        # patients into a real database.
        root = directory / "OpenDentImages"
        state = directory / "state"
        url = f"sqlite:///{state / SQLITE_FILE_NAME}"
        engine = make_engine(url)
        stack.callback(engine.dispose)
        tree = build_demo(engine, root)
        print(f"A-to-Z folder: {root}", file=out)
        print(f"database: {url}", file=out)
        print(f"patients: {', '.join(f'{n} (#{p})' for n, p in tree.patients.items())}", file=out)
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
            daemon = Daemon(demo_settings, engine, notifier=Notifier(None), metrics=Metrics())
            with exit_on_signals(daemon.handle_exit):
                daemon.run()
    return EXIT_OK
