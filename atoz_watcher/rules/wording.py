"""Counting words for people: what the commands print and the page shows."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 folder``, ``2 folders``; ``many`` where adding an s is wrong (``1 entry``)."""
    return f"{count} {word if count == 1 else many or word + 's'}"
