"""``atoz-watcher inbox list`` and ``inbox assign``: the files the inbox could not route.

``list`` prints every file waiting in an inbox's ``_Unmatched/`` with why, in words; ``assign``
files one of them to the patient (and category) the operator names, through ``Inbox.assign``:
a patient that does not exist or is deleted, an unknown category or a file that is not in an
``_Unmatched/`` folder is a one-line error (exit 2) and the file stays where it is.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import Engine

from atoz_watcher.app.commands.common import EXIT_FAILED, EXIT_OK, patient_folder, require_tables
from atoz_watcher.config.settings import Settings
from atoz_watcher.db import queries
from atoz_watcher.errors import ArgumentError, ConfigError
from atoz_watcher.rules.inbox_reasons import reason_words
from atoz_watcher.rules.wording import plural

# The inbox (and Pillow and zxing-cpp with it) is imported in the command that runs it (see
# the note in app.cli).
if TYPE_CHECKING:
    from atoz_watcher.app.wiring import Components
    from atoz_watcher.inbox import Inbox, Outcome, UnmatchedFile


def inbox_from(settings: Settings, components: Components) -> Inbox:
    """The inboxes ``[inbox]`` describes, filing through ``components``' writer and storage."""
    from atoz_watcher.inbox import Inbox  # noqa: PLC0415 - see the note at the top

    return Inbox(
        components.engine,
        components.writer,
        components.storage,
        settings.inbox,
        atoz_root=settings.atoz_path,
        lock_timeout_s=settings.scan.lock_timeout,
        on_stored=components.on_stored,
    )


def _inbox(settings: Settings, engine: Engine) -> Inbox:
    from atoz_watcher.app.wiring import Components  # noqa: PLC0415 - see the note at the top

    if not settings.inbox.folders:
        raise ConfigError("no inbox folder is configured: add [[inbox.folders]] path = ...")
    components = Components.from_settings(settings, engine, inline_thumbnails=True)
    return inbox_from(settings, components)


# -- list -------------------------------------------------------------------------------------


def pages_text(pages: tuple[int, ...]) -> str:
    """``3``, ``3-5`` (consecutive), or ``2, 4, 7``."""
    if len(pages) > 1 and list(pages) == list(range(pages[0], pages[-1] + 1)):
        return f"{pages[0]}-{pages[-1]}"
    return ", ".join(str(p) for p in pages)


def describe(found: UnmatchedFile) -> str:
    """One line: the path, why, since when, and where a part of a split batch came from."""
    why = reason_words(str(found.reason))
    if found.detail:
        why += f" ({found.detail})"
    line = f"{found.path}: {why}; came {_when(found.when)}"
    if found.pages:
        return f"{line}; pages {pages_text(found.pages)} of {found.original}"
    if found.original != found.path.name:
        return f"{line}; arrived as {found.original}"
    return line


def as_dict(found: UnmatchedFile) -> dict[str, object]:
    return {
        "path": str(found.path),
        "reason": str(found.reason),
        "reason_text": reason_words(str(found.reason)),
        "detail": found.detail,
        "when": found.when.isoformat() if found.when else None,
        "original": found.original,
        "pages": list(found.pages) if found.pages else None,
    }


def run_inbox_list(settings: Settings, engine: Engine, out: TextIO, *, as_json: bool) -> int:
    """Print every unmatched file of every inbox, then how many."""
    found = _inbox(settings, engine).unmatched()
    if as_json:
        json.dump({"count": len(found), "files": [as_dict(f) for f in found]}, out, indent=2)
        print(file=out)
        return EXIT_OK
    for item in found:
        print(describe(item), file=out)
    folders = plural(len(settings.inbox.folders), "inbox folder")
    print(f"{plural(len(found), 'unmatched file')} in {folders}", file=out)
    return EXIT_OK


# -- assign -----------------------------------------------------------------------------------


def run_inbox_assign(
    settings: Settings,
    engine: Engine,
    file: Path,
    *,
    pat_num: int,
    category: str | None,
    out: TextIO,
) -> int:
    """File the unmatched ``file`` to ``pat_num``; print the DocNum(s) and where it went."""
    from atoz_watcher.inbox import InboxError, Routed  # noqa: PLC0415 - see the note at the top

    require_tables(engine)
    path = Path(os.path.abspath(file))  # noqa: PTH100 - textual: '..' resolved, links not followed
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        raise ArgumentError(f"{file}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise ArgumentError(f"{file}: not a regular file")
    inbox = _inbox(settings, engine)
    try:
        outcome = inbox.assign(path, pat_num, _category_key(category))
    except InboxError as exc:
        raise ArgumentError(f"{file}: {exc}") from None
    if not isinstance(outcome, Routed):
        print(f"{file}: not filed: {_not_filed(outcome)}", file=out)
        return EXIT_FAILED
    for doc_num in outcome.doc_nums:
        print(f"DocNum {doc_num}: {_final_path(settings, engine, doc_num)}", file=out)
    return EXIT_OK


def _category_key(given: str | None) -> int | str | None:
    if given is None:
        return None
    text = given.strip()
    return int(text) if text.isascii() and text.isdigit() else text


def _final_path(settings: Settings, engine: Engine, doc_num: int) -> str:
    with engine.connect() as conn:
        entry = queries.document_entry(conn, doc_num=doc_num)
    if entry is None:
        return "(the row is gone)"
    if settings.storage == "InDatabase":
        return f"stored in the database (patient {entry.pat_num}, {entry.file_name})"
    return str(patient_folder(engine, settings.atoz_path, entry.pat_num) / entry.file_name)


def _not_filed(outcome: Outcome) -> str:
    from atoz_watcher.inbox import Duplicate, Unmatched  # noqa: PLC0415

    if isinstance(outcome, Unmatched):
        return f"{reason_words(outcome.reason)}; it is in _Unmatched/ as {outcome.name}"
    if isinstance(outcome, Duplicate):
        return f"the same content was filed already; moved to _Duplicates/{outcome.name}"
    return getattr(outcome, "why", "skipped")


def _when(value: datetime | None) -> str:
    return value.isoformat(sep=" ") if value else "unknown time"
