"""The inbox's record of one file being filed: written durably before each step it guards.

A manifest lives in ``<inbox>/_Work/<id>.json`` from the moment a file is claimed until its
original is in ``_Done/`` (or ``_Unmatched/``, ``_Duplicates/``). Its ``state`` says how far
the file got, and each part's ``state`` how far that part got::

    file:  claiming -> claimed -> routed -> split -> finishing          (then removed)
    part:  planned -> filing (floor: the patient's highest DocNum before) -> filed (doc_num)
           planned -> unmatched (moved to _Unmatched/)

Every step re-checks what it depends on, so a manifest left by a killed process is finished
by running it again (``Filer.run``), never filing a part twice.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from atoz_watcher.inbox.place import write_json
from atoz_watcher.system.contained import Folder

SUFFIX: Final = ".manifest.json"
VERSION: Final = 1


@dataclass
class PartRecord:
    """One part: pages (0-based; None for the whole file), where it goes or why not."""

    pages: list[int] | None
    target: dict[str, Any] | None = None  # router.Target's fields
    reason: str | None = None
    detail: str = ""
    file: str | None = None  # its own file in _Work/ (None: the claimed file itself)
    sha256: str = ""
    size: int = 0
    state: str = "planned"
    floor: int = 0
    doc_num: int | None = None


@dataclass
class Manifest:
    """One claimed file. ``source``: its parts inside the inbox, where it arrived."""

    id: str
    source: list[str]
    name: str
    work: str
    default: int | str | None = None  # the inbox folder's category, when it was claimed
    assigned: dict[str, Any] | None = None  # {"pat_num", "category"} for Inbox.assign
    state: str = "claiming"
    sha256: str = ""
    size: int = 0
    rule: str | None = None
    empty_covers: list[int] = field(default_factory=list)
    parts: list[PartRecord] = field(default_factory=list)
    version: int = VERSION

    @classmethod
    def new(
        cls,
        source: tuple[str, ...],
        *,
        extension: str,
        default: int | str | None,
        assigned: dict[str, Any] | None = None,
    ) -> Manifest:
        ident = uuid.uuid4().hex
        return cls(
            id=ident,
            source=list(source),
            name=source[-1],
            work=f"{ident}{extension}",
            default=default,
            assigned=assigned,
        )

    @property
    def file_name(self) -> str:
        return f"{self.id}{SUFFIX}"

    def save(self, work: Folder) -> None:
        write_json(work, self.file_name, asdict(self))

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Manifest | None:
        """A manifest read back; None when it is not one this version wrote."""
        if raw.get("version") != VERSION:
            return None
        try:
            parts = [PartRecord(**part) for part in raw.get("parts", [])]
            values = {k: v for k, v in raw.items() if k != "parts"}
            return cls(**values, parts=parts)
        except TypeError:
            return None
