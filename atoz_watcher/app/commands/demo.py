"""``atoz-watcher demo``: sample patients and files, registered, optionally watched."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pydantic import SecretStr
from sqlalchemy import Engine

from atoz_watcher.app.commands.common import EXIT_OK, exit_on_signals
from atoz_watcher.app.commands.rescan import print_summary
from atoz_watcher.app.wiring import Components
from atoz_watcher.config.sections import (
    InboxFolder,
    InboxSettings,
    MetricsSettings,
    ScanSettings,
    WatcherSettings,
)
from atoz_watcher.config.settings import SQLITE_FILE_NAME, Settings
from atoz_watcher.db import queries
from atoz_watcher.db.engine import make_engine
from atoz_watcher.db.models import IMG_TYPE_NAMES
from atoz_watcher.ingest.registrar import Registrar
from atoz_watcher.ingest.rescan import Rescanner
from atoz_watcher.rules.layout import patient_dir
from atoz_watcher.rules.wording import plural
from atoz_watcher.system.journal import Journal

# The heavy parts are imported in the command that runs them (see the note in app.cli).
if TYPE_CHECKING:
    from atoz_watcher.app.demo import DemoTree
    from atoz_watcher.inbox import Outcome

INBOX_NAME = "ScannerInbox"


def print_demo_tree(tree: DemoTree, url: str, out: TextIO) -> None:
    """Where the demo is: the folder, the database, and each patient's folder in full."""
    print(f"A-to-Z folder: {tree.root}", file=out)
    print(f"database: {url}", file=out)
    print(f"{plural(len(tree.patients), 'patient')}, and their folders:", file=out)
    for name, pat_num in tree.patients.items():
        print(f"  #{pat_num:<3} {patient_dir(tree.root, name)}", file=out)


def print_inbox(outcomes: list[Outcome], inbox: Path, engine: Engine, out: TextIO) -> None:
    """What became of each file in the demo's inbox, in words."""
    from atoz_watcher.inbox import Routed, Unmatched  # noqa: PLC0415 - see the note at the top

    print(f"\nscanner inbox: {inbox}", file=out)
    if not outcomes:
        print("  nothing waiting (drop a scan here, or delete the demo for a fresh one)", file=out)
    for outcome in outcomes:
        name = Path(outcome.source).name
        if isinstance(outcome, Routed):
            with engine.connect() as conn:
                entries = [queries.document_entry(conn, doc_num=d) for d in outcome.doc_nums]
            filed = ", ".join(
                f"DocNum {e.doc_num} for patient #{e.pat_num}" for e in entries if e is not None
            )
            split = "split by its cover sheets into " if len(entries) > 1 else "filed as "
            print(f"  {name}: {split}{plural(len(entries), 'document')}: {filed}", file=out)
            print(f"  the original is kept in {inbox / '_Done'}", file=out)
        elif isinstance(outcome, Unmatched):
            print(
                f"  {name}: unmatched ({outcome.reason}), see `atoz-watcher inbox list`", file=out
            )
        else:
            print(f"  {name}: {type(outcome).__name__.lower()}", file=out)


def run_demo(directory: Path | None, out: TextIO, *, watch: bool = False) -> int:
    from atoz_watcher.app.commands.inbox import inbox_from  # noqa: PLC0415
    from atoz_watcher.app.demo import (  # noqa: PLC0415
        build_demo,
        drop_batch_scan,
        existing_demo,
        registered_rows,
    )

    with ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atoz-demo-")))
        directory = directory.resolve()  # full paths, to paste into a file manager
        # Never from Settings: an ATOZ_DATABASE_URL in the environment must not send sample
        # patients into a real database.
        root = directory / "OpenDentImages"
        inbox = directory / INBOX_NAME
        state = directory / "state"
        url = f"sqlite:///{state / SQLITE_FILE_NAME}"
        engine = make_engine(url)
        stack.callback(engine.dispose)
        tree = existing_demo(engine, root)
        if tree is not None:
            print(f"reusing the sample data in {directory} (delete it for a fresh start)", file=out)
        else:
            tree = build_demo(engine, root)
            drop_batch_scan(engine, inbox, list(tree.patients.values()))
        print_demo_tree(tree, url, out)
        registrar = Registrar(engine, Journal(state / "journal"))
        scanner = Rescanner(engine, registrar, root, batch_size=ScanSettings().batch_size)
        summary = scanner.run()
        demo_settings = Settings.model_construct(
            atoz_path=root,
            database_url=SecretStr(url),
            storage="LocalAtoZ",
            state_dir=state,
            scan=ScanSettings(),
            watcher=WatcherSettings(),
            metrics=MetricsSettings(enabled=False),
            inbox=InboxSettings(folders=(InboxFolder(path=inbox),)),
        )
        # Without --watch the inbox is processed once here; with it, the daemon does it.
        outcomes = []
        if not watch:
            components = Components.from_settings(demo_settings, engine, inline_thumbnails=True)
            outcomes = inbox_from(demo_settings, components).catch_up()
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
        if not watch:
            print_inbox(outcomes, inbox, engine, out)
        if watch:
            print(
                f"\nwatching {root} and the scanner inbox {inbox}: drop a file into a patient "
                "folder or a scan into the inbox (Ctrl-C stops)",
                file=out,
            )
            out.flush()
            from atoz_watcher.app.daemon import Daemon  # noqa: PLC0415 - see the note at the top
            from atoz_watcher.system.sdnotify import Notifier  # noqa: PLC0415

            daemon = Daemon(
                Components.from_settings(demo_settings, engine), notifier=Notifier(None)
            )
            with exit_on_signals(daemon.handle_exit):
                daemon.run()
    return EXIT_OK
