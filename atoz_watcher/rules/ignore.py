"""The ignore list: NAS and OS litter that is never a patient document (pure).

Shared by the watcher and every rescan, so a ``.part`` download or a ``@eaDir`` folder is left
alone however it is found.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

IGNORED = "ignored"  # the skip reason a rescan reports for them

# NAS and OS litter that is never a patient document. Matched (fnmatch, case-insensitive) against
# each part of a path below the root, so "@eaDir" also hides everything inside it.
DEFAULT_IGNORE = (
    "Thumbnails",
    "@eaDir",
    ".stfolder",
    "#recycle",
    "._*",
    "~$*",
    "*.tmp",
    "*.part",
    "*.crdownload",
)


class IgnoreRules:
    """fnmatch patterns (any case) matched against each part of a path below the root, and
    ``folders`` (each as its parts below the root, e.g. a scanner inbox inside the A-to-Z
    folder) ignored with everything inside them.

    One compiled expression for all patterns: this runs for every event of a burst.
    """

    def __init__(self, patterns: Sequence[str], *, folders: Sequence[Sequence[str]] = ()) -> None:
        joined = "|".join(fnmatch.translate(p.casefold()) for p in patterns)
        self._match = re.compile(joined).match if patterns else None
        self._folders = tuple(tuple(folder) for folder in folders if folder)

    def __call__(self, parts: Sequence[str]) -> bool:
        match = self._match
        if match is not None and any(match(part.casefold()) for part in parts):
            return True
        return any(tuple(parts[: len(folder)]) == folder for folder in self._folders)
