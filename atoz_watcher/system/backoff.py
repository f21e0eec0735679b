"""Exponential backoff: the next delay after one more failure (pure).

One rule for every retry in the service (a file that could not be read, a placeholder that could
not be fetched, a rescan that met a database outage): the first failure waits ``first``, each
further one ``factor`` times the last, never more than ``maximum``.
"""

from __future__ import annotations


def next_delay(previous: float, *, first: float, maximum: float, factor: float = 2.0) -> float:
    """The delay after one more failure, grown from ``previous`` (0 when none failed yet).

    Grown from the last delay rather than ``first * factor**n``, which overflows a float after
    about a thousand failures of something that never recovers.
    """
    delay = first if previous <= 0 else previous * factor
    return min(delay, maximum)
