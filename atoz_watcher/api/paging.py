"""``Limit`` and ``Offset`` as Open Dental's API takes them on a list.

A list returns at most ``Limit`` items from item ``Offset`` on (0 first). Limit defaults to
the largest page, ``[api] max_limit`` (1,000 as Open Dental's API Service; its cloud API has
100), and a larger one is cut to it. Clients request pages until one comes back short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from atoz_watcher.api.errors import ApiError
from atoz_watcher.api.models import BIGINT_MAX

_DIGITS = re.compile(r"[0-9]{1,100}", re.ASCII)
LIMIT_INVALID = "Limit is invalid: it must be a whole number of 1 or more"
OFFSET_INVALID = (
    f"Offset is invalid: it must be a whole number from 0 to {BIGINT_MAX} (0 is the first item)"
)


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


def page_of(limit: str | None, offset: str | None, *, max_limit: int) -> Page:
    """The page a request asks for; ``ApiError`` 400 for a value that is not one."""
    size = max_limit
    if limit is not None:
        if not _DIGITS.fullmatch(limit) or int(limit) < 1:
            raise ApiError(400, LIMIT_INVALID)
        size = min(int(limit), max_limit)
    start = 0
    if offset is not None:
        if not _DIGITS.fullmatch(offset) or int(offset) > BIGINT_MAX:
            raise ApiError(400, OFFSET_INVALID)
        start = int(offset)
    return Page(limit=size, offset=start)
