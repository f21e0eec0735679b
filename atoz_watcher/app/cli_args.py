"""The command line: the subcommands, what each does with an example, and their options."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from atoz_watcher import __version__
from atoz_watcher.system.logging import LEVELS

CONFIG = "/etc/atoz-watcher/config.toml"
# A subcommand's description is wrapped to this (its example is printed as written).
HELP_WIDTH = 78


@dataclass(frozen=True)
class Command:
    """A subcommand's one-line help, what it does, and an example."""

    help: str
    description: str
    example: str


COMMANDS = {
    "run": Command(
        "watch the A-to-Z folder and register files as they land (the service)",
        "Watch the A-to-Z folder and register each new file once it is completely written; "
        "serve metrics and, with [api] enabled = true, the Documents API. Runs until SIGTERM "
        "or Ctrl-C; meant to run under systemd (systemd/atoz-watcher.service).",
        f"atoz-watcher --config {CONFIG} run",
    ),
    "api": Command(
        "serve Open Dental's Documents API ([api] settings) until SIGTERM or Ctrl-C",
        "Serve Open Dental's Documents API alone (whatever api.enabled says); the way to serve "
        'it for storage = "InDatabase". Needs at least one [[api.keys]] pair.',
        f"atoz-watcher --config {CONFIG} api",
    ),
    "check": Command(
        "check the config, database, A-to-Z root and inotify limits; say what is wrong",
        "Check everything the service needs, one line each (ok or FAIL, and what to do): the "
        "database, its tables and image categories, the A-to-Z root and its group, the inotify "
        "limits and the state directory. Exit code 1 when anything failed.",
        f"atoz-watcher --config {CONFIG} check",
    ),
    "init-db": Command(
        "create missing tables; add image categories when there are none",
        "Create whichever of Open Dental's tables the database lacks (never altering one) "
        "and, only when there is no image category at all, add five. For the embedded SQLite "
        "database and tests; on Open Dental's own database it changes nothing.",
        "atoz-watcher init-db",
    ),
    "rescan": Command(
        "register every unknown file in the tree",
        "Register every file in the patient folders that no document row names yet, as Open "
        "Dental's import would, one line per file, then a summary. Files written to a moment "
        "ago are left for a later rescan, and named.",
        f"atoz-watcher --config {CONFIG} rescan --dry-run",
    ),
    "materialize": Command(
        "turn placeholder rows (SetByUrl, Upload by other clients) into files, once",
        "One pass over the placeholder document rows (Note _download_:URL or _rawBase64_:) "
        "left by API clients: store each file as Upload does. Exit code 1 when some failed.",
        f"atoz-watcher --config {CONFIG} materialize",
    ),
    "thumbnails": Command(
        "build missing or stale thumbnails of registered documents",
        "Build the 100x100 thumbnail (<patient folder>/Thumbnails/<FileName>) of every "
        "registered image whose thumbnail is missing or older than its document.",
        f"atoz-watcher --config {CONFIG} thumbnails --patient 15",
    ),
    "cover-sheet": Command(
        "write a patient's cover sheet (PDF) to put on top of their pages in a scanner",
        "Write a one-page PDF for one patient: a QR code and a Code 128 that route the pages "
        "scanned after it to this patient (and category), with the name, PatNum, birth date "
        "and category in large type to check by eye. Paper: Letter by default (Open Dental's "
        "users are mostly in the US), --paper a4 elsewhere. Prints the path written.",
        "atoz-watcher cover-sheet --patient 18 --category Forms --paper a4",
    ),
    "inbox": Command(
        "list the scans the inbox could not route, or file one by hand",
        "The files waiting in each inbox's _Unmatched/ folder: `inbox list` prints them, "
        "why each was not routed and when it came; `inbox assign FILE --patient N` files one "
        "to a patient (and --category), as if it had come with that patient's cover sheet.",
        f"atoz-watcher --config {CONFIG} inbox list",
    ),
    "hash-password": Command(
        "print the hash of a password, for a [[ui.users]] table of the front-desk page",
        "Ask for a password twice (unechoed) and print its argon2id hash: paste it into "
        "password_hash of a [[ui.users]] table. Reads one line from standard input instead "
        "when that is not a terminal. The password itself is never printed or kept.",
        "atoz-watcher hash-password",
    ),
    "demo": Command(
        "import a throw-away sample tree into a throw-away SQLite database",
        "Build a sample A-to-Z folder and SQLite database (never the configured ones), import "
        "it and list the documents; a scanner inbox beside it holds a two-patient batch scan "
        "with cover sheets, which is split and filed. With --dir DIR they are kept there, and "
        "a second run reuses them.",
        "atoz-watcher demo --dir /tmp/atoz-demo --watch",
    ),
}


def _add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    commands: Mapping[str, Command],
    common: argparse.ArgumentParser,
) -> dict[str, argparse.ArgumentParser]:
    """One subparser per command, with its help, description, example and the common options."""
    return {
        name: subparsers.add_parser(
            name,
            help=command.help,
            description=textwrap.fill(command.description, width=HELP_WIDTH),
            epilog=f"example:\n  {command.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )
        for name, command in commands.items()
    }


def _common_options(*, in_command: bool) -> argparse.ArgumentParser:
    """--config and --log-level, taken before or after the subcommand. After it, they are
    not filled in when absent (SUPPRESS), so they never undo a value given before it."""
    default = argparse.SUPPRESS if in_command else None
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=default,
        help="TOML settings file (default: $ATOZ_CONFIG, if set)",
    )
    options.add_argument(
        "--log-level",
        choices=LEVELS,
        default=default,
        help="level of the log events on stderr (default: info for run, api and demo "
        "--watch, warning otherwise); for rescan and thumbnails, warning or error also "
        "leaves out the per-file lines on stdout",
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atoz-watcher",
        description="Registers files in Open Dental's A-to-Z folder as document rows.",
        epilog="examples:\n  atoz-watcher demo\n"
        f"  atoz-watcher --config {CONFIG} check\n"
        "  atoz-watcher rescan --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common_options(in_command=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options(in_command=True)
    sub = _add_commands(commands, COMMANDS, common)
    rescan = sub["rescan"]
    rescan.add_argument("--patient", type=int, metavar="PATNUM", help="only this patient")
    rescan.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be registered (final path, patient, category), change nothing",
    )
    thumbnails = sub["thumbnails"]
    thumbnails.add_argument("--patient", type=int, metavar="PATNUM", help="only this patient")
    thumbnails.add_argument(
        "--force", action="store_true", help="rebuild every thumbnail, fresh ones too"
    )
    cover = sub["cover-sheet"]
    cover.add_argument(
        "--patient", type=int, metavar="PATNUM", required=True, help="the patient (PatNum)"
    )
    cover.add_argument(
        "--category",
        metavar="CATEGORY",
        help="the image category to file under: its DefNum or its name, in any case (default: "
        "none in the code; the inbox's category applies)",
    )
    cover.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="where to write the PDF (default: cover-<PatNum>[-<category>].pdf here)",
    )
    cover.add_argument(
        "--paper",
        choices=("letter", "a4"),
        default="letter",
        help="paper size (default: letter, the US size most Open Dental users print on)",
    )
    cover.add_argument("--force", action="store_true", help="replace --out if it exists")
    _inbox_commands(sub["inbox"], common)
    demo = sub["demo"]
    demo.add_argument(
        "--dir",
        type=Path,
        help="build the demo here and keep it; a rerun reuses it (default: a temporary folder)",
    )
    demo.add_argument(
        "--watch",
        action="store_true",
        help="then keep running the daemon on it: drop files into its folders (Ctrl-C stops)",
    )
    return parser


INBOX_COMMANDS = {
    "list": Command(
        "print every unmatched file of every inbox, why, and when it came",
        "Print every file waiting in an inbox's _Unmatched/ folder, one line each: its path, "
        "why it was not routed, when it came, and for a part of a split batch the pages of "
        "the original; then how many. --json prints the same for scripts.",
        f"atoz-watcher --config {CONFIG} inbox list --json",
    ),
    "assign": Command(
        "file one unmatched file to a patient (and a category)",
        "File FILE (a file in an inbox's _Unmatched/ folder) to the patient --patient names, "
        "under --category (default: the _##_ prefix of its original name, else the first "
        "visible image category), and print its DocNum "
        "and where the file went. A patient that does not exist or is deleted, or an unknown "
        "category, is refused (exit code 2) and the file stays where it is.",
        f"atoz-watcher --config {CONFIG} inbox assign /srv/scans/_Unmatched/scan0042.pdf "
        "--patient 18 --category X-Rays",
    ),
}


def _inbox_commands(inbox: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    actions = inbox.add_subparsers(dest="inbox_command", required=True, metavar="ACTION")
    sub = _add_commands(actions, INBOX_COMMANDS, common)
    sub["list"].add_argument("--json", action="store_true", help="print JSON, for scripts")
    assign = sub["assign"]
    assign.add_argument("file", type=Path, metavar="FILE", help="a file in an _Unmatched/ folder")
    assign.add_argument(
        "--patient", type=int, metavar="PATNUM", required=True, help="the patient (PatNum)"
    )
    assign.add_argument(
        "--category",
        metavar="CATEGORY",
        help="the image category: its DefNum or its name, in any case (default: the _##_ "
        "prefix of its original name, else the first visible image category)",
    )
