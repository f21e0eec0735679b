"""The cover sheet's code, and how a scan's pages are parted by the cover sheets found in it.

Pure: the standard library only. The payload is compact text, so a QR code and a Code 128
fallback carry the same thing::

    ATZ1:<PatNum>[:<category>]:<check>

``<category>`` is a DefNum (digits) or an image category's name. ``<check>`` is the first
:data:`CHECK_CHARS` base32 characters of a SHA-256 over a fixed domain string and everything
before the last colon: a misread, one changed character, a truncated code or somebody else's
QR code (a URL, a vCard, another product's ``ATZ1:``) fails it, 1 in 2**40 by chance.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "ATZ1"
CHECK_CHARS: Final = 8  # 40 bits of base32
_SEPARATOR: Final = ":"
# Changing it (or the prefix) makes every printed cover sheet unreadable: it versions the code.
_DOMAIN: Final = b"atoz-watcher cover sheet\x00"
_BIGINT_MAX: Final = 2**63 - 1
# definition.ItemName is varchar(255); longer cannot name a category.
_MAX_NAME_CHARS: Final = 255
_BASE32: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


@dataclass(frozen=True, slots=True)
class CoverCode:
    """A decoded cover sheet: the patient, and the category as a DefNum or a name (or none)."""

    pat_num: int
    category: int | str | None = None


def _check(body: str) -> str:
    digest = hashlib.sha256(_DOMAIN + body.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii")[:CHECK_CHARS]


def _canonical_number(text: str) -> int | None:
    """``text`` as a positive bigint written the one way we write it (no sign, no leading 0)."""
    if not text.isascii() or not text.isdigit() or text.startswith("0"):
        return None
    number = int(text)
    return number if number <= _BIGINT_MAX else None


def _name_problem(name: str) -> str | None:
    if not name or name != name.strip():
        return "is empty or starts or ends with a space"
    if len(name) > _MAX_NAME_CHARS:
        return f"is longer than {_MAX_NAME_CHARS} characters"
    if not name.isprintable():
        return "holds a control character"
    if name.isascii() and name.isdigit():
        # It would read back as a DefNum.
        return "is all digits (pass the DefNum as a number)"
    return None


def encode(pat_num: int, category: int | str | None = None) -> str:
    """The payload of a cover sheet for ``pat_num``, optionally naming a category."""
    if isinstance(pat_num, bool) or not 0 < pat_num <= _BIGINT_MAX:
        raise ValueError(f"a PatNum is a positive bigint, not {pat_num!r}")
    fields = [PREFIX, str(pat_num)]
    if isinstance(category, bool):
        raise TypeError("a category is a DefNum or a name, not a bool")
    if isinstance(category, int):
        if not 0 < category <= _BIGINT_MAX:
            raise ValueError(f"a DefNum is a positive bigint, not {category}")
        fields.append(str(category))
    elif category is not None:
        problem = _name_problem(category)
        if problem is not None:
            raise ValueError(f"the category name {problem}")
        fields.append(category)
    body = _SEPARATOR.join(fields)
    return f"{body}{_SEPARATOR}{_check(body)}"


def decode(text: str) -> CoverCode | None:
    """The cover code ``text`` carries, or None when it is not ours or fails its check."""
    body, separator, check = text.rpartition(_SEPARATOR)
    if not separator or len(check) != CHECK_CHARS or not set(check) <= _BASE32:
        return None
    if _check(body) != check:
        return None
    prefix, _, rest = body.partition(_SEPARATOR)
    return _fields(rest) if prefix == PREFIX else None


def _fields(rest: str) -> CoverCode | None:
    """The code's fields after the prefix, when written as :func:`encode` writes them."""
    pat_text, has_category, category_text = rest.partition(_SEPARATOR)
    pat_num = _canonical_number(pat_text)
    if pat_num is None:
        return None
    if not has_category:
        return CoverCode(pat_num)
    def_num = _canonical_number(category_text)
    if def_num is not None:
        return CoverCode(pat_num, def_num)
    if _name_problem(category_text) is not None:
        return None
    return CoverCode(pat_num, category_text)


@dataclass(frozen=True, slots=True)
class Part:
    """Pages of a scan (0-based, in order) that go together: to ``code``'s patient, or, when
    ``code`` is None, the pages before the first cover sheet, which no cover sheet routes.
    ``cover`` is the page of the cover sheet that opened the part (dropped from it).
    """

    code: CoverCode | None
    pages: tuple[int, ...]
    cover: int | None


@dataclass(frozen=True, slots=True)
class Plan:
    """How a scan is parted by its cover sheets.

    ``empty_covers``: cover sheets followed directly by another cover sheet or by the end of
    the scan; they route nothing (a one-page scan that is a cover sheet is one). ``conflicts``:
    pages that carry codes for different patients or categories; such a page is taken as a
    cover sheet whose pages nobody routes (a part with no code), never guessed.
    """

    parts: tuple[Part, ...]
    empty_covers: tuple[int, ...]
    conflicts: tuple[int, ...]

    @property
    def has_covers(self) -> bool:
        """Whether any page is a cover sheet; when not, the scan is one unrouted part."""
        return bool(self.empty_covers or self.conflicts) or any(
            part.cover is not None for part in self.parts
        )


def plan_parts(codes_per_page: Sequence[Collection[CoverCode]]) -> Plan:
    """Part a scan by the cover codes found on each of its pages.

    The pages after a cover sheet, up to the next one, go to that sheet's patient. Pages
    before the first cover sheet form a part with no code (the caller routes it by its other
    rules or leaves it unmatched): pages are never dropped unless they are cover sheets.
    """
    parts: list[Part] = []
    empty: list[int] = []
    conflicts: list[int] = []
    code: CoverCode | None = None
    cover: int | None = None
    pages: list[int] = []

    def close() -> None:
        if pages:
            parts.append(Part(code=code, pages=tuple(pages), cover=cover))
        elif cover is not None and cover not in conflicts:
            empty.append(cover)

    for index, found in enumerate(codes_per_page):
        distinct = set(found)
        if not distinct:
            pages.append(index)
            continue
        close()
        pages = []
        cover = index
        if len(distinct) == 1:
            (code,) = distinct
        else:
            code = None
            conflicts.append(index)
    close()
    return Plan(parts=tuple(parts), empty_covers=tuple(empty), conflicts=tuple(conflicts))
