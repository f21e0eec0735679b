"""File names in a patient folder: which are plain, which are taken in, the ``_##_`` prefix,
``x`` collisions.

Pure functions; the rules are Open Dental's (see the README, "How files are imported").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice

# Open Dental matches ``^_\d*_``: "_135_x.jpg" and also "__x.jpg" (number 0).
_PREFIX = re.compile(r"_(\d*)_", re.ASCII)
_BIGINT_MAX = 2**63 - 1
MAX_NAME_CHARS = 255  # document.FileName is varchar(255)
# A stored file's name tries this many x-prefixed names for a free one, then gives up.
FREE_NAME_TRIES = 50


class Skip(StrEnum):
    """Why a name in a patient folder is not imported. The values appear in summaries."""

    HIDDEN = "hidden"
    THUMBS_DB = "thumbs-db"
    UNDECODABLE = "undecodable-name"
    TOO_LONG = "name-too-long"
    EMPTY_AFTER_PREFIX = "empty-after-prefix"
    HIDDEN_AFTER_PREFIX = "hidden-after-prefix"


def plain(name: str) -> bool:
    """A plain file name: one path component here and on Windows, where Open Dental reads it
    (no ``/``, ``\\``, NUL, ``.`` or ``..``), so it cannot lead out of its folder."""
    return name not in {"", ".", ".."} and not any(c in name for c in "/\\\0")


def skip_reason(name: str) -> Skip | None:
    """Why Open Dental would not import ``name`` as it stands, or None when it would."""
    if name.startswith("."):
        return Skip.HIDDEN
    if name.lower().endswith("thumbs.db"):
        return Skip.THUMBS_DB
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        # os.fsdecode() keeps bytes that are not UTF-8 as surrogates; no database column can
        # hold them, so the file stays where it is and is reported.
        return Skip.UNDECODABLE
    if len(name) > MAX_NAME_CHARS:
        return Skip.TOO_LONG
    return None


@dataclass(frozen=True, slots=True)
class Prefix:
    """A parsed ``_##_`` prefix: the DefNum it names (0 when none or unusable) and the rest."""

    number: int
    rest: str


def parse_prefix(name: str) -> Prefix | None:
    """Split ``_135_x.jpg`` into ``Prefix(135, "x.jpg")``; None when there is no prefix.

    An empty number (``__x.jpg``) and a number too large for a bigint select no category
    (number 0); the prefix is cut off all the same, as Open Dental does.
    """
    match = _PREFIX.match(name)
    if match is None:
        return None
    digits = match.group(1)
    number = int(digits) if digits else 0
    if number > _BIGINT_MAX:
        number = 0
    return Prefix(number=number, rest=name[match.end() :])


def final_name_reason(name: str) -> Skip | None:
    """Why a name left after cutting a prefix cannot be used, or None when it can."""
    if not name:
        return Skip.EMPTY_AFTER_PREFIX
    if name.startswith("."):
        return Skip.HIDDEN_AFTER_PREFIX
    return skip_reason(name)


def x_prefixed(name: str) -> Iterator[str]:
    """``name``, ``xname``, ``xxname``, ...: Open Dental's way to a free name when one is taken.

    Endless: each caller says when to stop (a name too long, too many tries).
    """
    candidate = name
    while True:
        yield candidate
        candidate = "x" + candidate


def free_name_candidates(name: str) -> list[str]:
    """The names a stored file may take, in order: ``name`` and its first x-prefixed ones."""
    return list(islice(x_prefixed(name), FREE_NAME_TRIES))


def collision_free_name(name: str, taken: Callable[[str], bool]) -> str | None:
    """Put ``x`` in front of ``name`` while ``taken(name)``; None when it would grow too long."""
    candidates = x_prefixed(name)
    while taken(candidate := next(candidates)):
        if len(candidate) >= MAX_NAME_CHARS:  # one more x would not fit
            return None
    return candidate


@dataclass(frozen=True, slots=True)
class ImageCategory:
    """A ``definition`` row with Category=18."""

    def_num: int
    item_order: int
    is_hidden: bool
    name: str


def visible_in_order(categories: Collection[ImageCategory]) -> list[ImageCategory]:
    """The image categories a document may be filed under, in Open Dental's order (ItemOrder,
    then DefNum)."""
    return sorted(
        (c for c in categories if not c.is_hidden), key=lambda c: (c.item_order, c.def_num)
    )


def first_visible(categories: Collection[ImageCategory]) -> ImageCategory | None:
    """Open Dental's default: the visible image category with the lowest ItemOrder."""
    return next(iter(visible_in_order(categories)), None)


def category_for(number: int | None, categories: Collection[ImageCategory]) -> int | None:
    """The DefNum a prefix number selects: itself when it is an image category (hidden ones
    too), otherwise the first visible image category; None when there is none to fall back to.
    """
    if number:
        for category in categories:
            if category.def_num == number:
                return category.def_num
    default = first_visible(categories)
    return None if default is None else default.def_num
