"""Walk the A-to-Z tree: letter folders, patient folders, the files directly in them.

``os.scandir`` only, and no ``stat`` per file: DirEntry knows a file from a folder by the entry
type the kernel returns. Shared by the startup, periodic and command-line rescans.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import structlog

from atoz_watcher.errors import RootUnusableError
from atoz_watcher.system.contained import LinkRefusedError

log = structlog.get_logger("atoz_watcher.scan")

SYMLINK = "symlink"
NOT_REGULAR = "not-a-regular-file"


@dataclass(slots=True)
class Listing:
    """The files directly in a patient folder, and the entries that are not plain files."""

    files: list[str] = field(default_factory=list)
    odd: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


def _subfolders(path: str) -> tuple[list[os.DirEntry[str]], list[os.DirEntry[str]]]:
    """The folders in ``path``, and the links (to anything: a link is never followed)."""
    with os.scandir(path) as entries:
        found = list(entries)
    folders = [e for e in found if e.is_dir(follow_symlinks=False)]
    links = [e for e in found if e.is_symlink()] if len(folders) < len(found) else []
    return folders, links


class FolderEntry(NamedTuple):
    """``<root>/<letter>/<name>`` with its path as a string, as ``os.scandir`` gives it.

    A whole-tree rescan makes a ``Path`` only for the few folders where it finds something to
    do: 20,000 ``Path`` objects cost a third or more of the time of the walk itself.
    """

    letter: str
    name: str
    path: str


Unlisted = Callable[[FolderEntry, OSError], None]


def walk_folders(root: Path, *, on_unlisted: Unlisted | None = None) -> Iterator[FolderEntry]:
    """Every ``<letter>/<patient>`` folder under ``root``, in name order, one letter folder at
    a time: the root is listed now (RootUnusableError when it cannot be), each letter folder
    when the walk reaches it, and only its patient folders are held meanwhile, not the whole
    tree's. A letter folder that cannot be listed (unreadable, or renamed since the root was
    listed) is skipped and handed, with the error, to ``on_unlisted``; so is a letter or
    patient folder that is a link (with LinkRefusedError): never followed, always reported."""
    try:
        folders, links = _subfolders(os.fspath(root))
        letters = sorted(e.name for e in folders)
    except FileNotFoundError:
        raise RootUnusableError(root, "it does not exist") from None
    except NotADirectoryError:
        raise RootUnusableError(root, "it is not a folder") from None
    except PermissionError:
        raise RootUnusableError(root, "permission denied") from None
    if on_unlisted is not None:
        for link in sorted(links, key=lambda e: e.name):
            on_unlisted(FolderEntry(link.name, "", link.path), _refused(link.name))
    return _walk_letters(os.fspath(root), letters, on_unlisted)


def _refused(relative: str) -> LinkRefusedError:
    log.warning("path.link_refused", path=relative)
    return LinkRefusedError(relative)


def _walk_letters(
    root: str, letters: list[str], on_unlisted: Unlisted | None
) -> Iterator[FolderEntry]:
    for letter in letters:
        path = os.path.join(root, letter)  # noqa: PTH118 - strings: no Path per folder
        try:
            patients, links = _subfolders(path)
        except OSError as exc:
            if on_unlisted is not None:
                on_unlisted(FolderEntry(letter, "", path), exc)
            continue
        if on_unlisted is not None:
            for link in sorted(links, key=lambda e: e.name):
                found = FolderEntry(letter, link.name, link.path)
                on_unlisted(found, _refused(f"{letter}/{link.name}"))
        patients.sort(key=lambda e: e.name)
        for entry in patients:
            yield FolderEntry(letter, entry.name, entry.path)


def list_files(folder: str | os.PathLike[str]) -> Listing:
    """The entries directly in ``folder``: plain files, and odd ones (symlinks, FIFOs, ...).

    Subfolders such as ``Thumbnails/`` are ignored, as Open Dental ignores them. Raises OSError
    when the folder cannot be listed.
    """
    with os.scandir(folder) as it:
        entries = list(it)
    # One comprehension for the common case; the entries that are not plain files (nearly
    # always just Thumbnails/) are sorted out only when there are any.
    files = [e.name for e in entries if e.is_file(follow_symlinks=False)]
    listing = Listing(files=files)
    if len(files) < len(entries):
        for entry in entries:
            if entry.is_symlink():
                listing.odd.append((entry.name, SYMLINK))
            elif not entry.is_file(follow_symlinks=False) and not entry.is_dir(
                follow_symlinks=False
            ):
                listing.odd.append((entry.name, NOT_REGULAR))
    return listing
