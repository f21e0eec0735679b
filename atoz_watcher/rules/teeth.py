"""Tooth numbers as Open Dental stores them: American (Universal) numbers, comma-separated.

Valid: 1-32 (permanent), 51-82 (supernumerary permanent), A-T (primary), AS-TS (supernumerary
primary). Input is upper-cased and its spaces removed; ranges ``a-b`` expand in order; the
result is sorted permanent first (with their supernumeraries), then primary, each tooth once.
"""

from __future__ import annotations

import string
from typing import Final

_PRIMARY: Final = string.ascii_uppercase[:20]  # A..T
# The four kinds, in Open Dental's display order; a range stays within one kind.
_KINDS: Final = (
    tuple(str(n) for n in range(1, 33)),
    tuple(str(n) for n in range(51, 83)),
    tuple(_PRIMARY),
    tuple(f"{letter}S" for letter in _PRIMARY),
)
_ORDER: Final = tuple(tooth for kind in _KINDS for tooth in kind)
_ORDINAL: Final = {tooth: index for index, tooth in enumerate(_ORDER)}
_KIND: Final = {tooth: number for number, kind in enumerate(_KINDS) for tooth in kind}

IMPOSSIBLE_RANGE: Final = "Range specified is impossible."


class ToothNumberError(ValueError):
    """An entry is not a tooth number, or a range runs backwards; the message is Open
    Dental's own."""


def _tooth(entry: str) -> str:
    canonical = str(int(entry)) if entry.isascii() and entry.isdigit() else entry  # "05" is 5
    if canonical not in _ORDINAL:
        raise ToothNumberError(f"{entry} is not a valid tooth number.")
    return canonical


def normalise(text: str) -> str:
    """``"1-5, 8"`` -> ``"1,2,3,4,5,8"``; ``""`` -> ``""``. Raises ToothNumberError."""
    compact = text.replace(" ", "").upper()
    if not compact:
        return ""
    teeth: set[str] = set()
    for entry in compact.split(","):
        if "-" in entry:
            begin, _, end = entry.partition("-")
            first, last = _tooth(begin), _tooth(end)
            if _KIND[first] != _KIND[last] or _ORDINAL[last] < _ORDINAL[first]:
                raise ToothNumberError(IMPOSSIBLE_RANGE)
            teeth.update(_ORDER[_ORDINAL[first] : _ORDINAL[last] + 1])
        else:
            teeth.add(_tooth(entry))
    return ",".join(sorted(teeth, key=_ORDINAL.__getitem__))
