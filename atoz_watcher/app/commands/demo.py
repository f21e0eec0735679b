"""``atoz-watcher demo``: sample patients and files, registered, optionally watched."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pydantic import SecretStr

from atoz_watcher.app.commands.common import EXIT_OK, exit_on_signals
from atoz_watcher.app.commands.rescan import print_summary
from atoz_watcher.app.wiring import Components
from atoz_watcher.app.wording import plural
from atoz_watcher.config.sections import MetricsSettings, ScanSettings, WatcherSettings
from atoz_watcher.config.settings import SQLITE_FILE_NAME, Settings
from atoz_watcher.db.engine import make_engine
from atoz_watcher.db.models import IMG_TYPE_NAMES
from atoz_watcher.ingest.registrar import Registrar
from atoz_watcher.ingest.rescan import Rescanner
from atoz_watcher.rules.layout import patient_dir
from atoz_watcher.system.journal import Journal

# The heavy parts are imported in the command that runs them (see the note in app.cli).
if TYPE_CHECKING:
    from atoz_watcher.app.demo import DemoTree


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
            from atoz_watcher.app.daemon import Daemon  # noqa: PLC0415 - see the note at the top
            from atoz_watcher.system.sdnotify import Notifier  # noqa: PLC0415

            daemon = Daemon(
                Components.from_settings(demo_settings, engine), notifier=Notifier(None)
            )
            with exit_on_signals(daemon.handle_exit):
                daemon.run()
    return EXIT_OK
