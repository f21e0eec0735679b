"""The scanner inbox: files dropped in inbox folders, routed to patients and filed once.

``Inbox`` (``inbox.inbox``) is the one entry point; ``router`` decides, ``filer`` files with a
durable manifest (``manifest``), ``place`` reaches the folders without following links.
"""

from __future__ import annotations

from atoz_watcher.inbox.inbox import Inbox
from atoz_watcher.inbox.outcomes import (
    Duplicate,
    InboxError,
    OnOutcome,
    Outcome,
    OutcomeKind,
    Reason,
    Routed,
    Rule,
    Skipped,
    Unmatched,
    UnmatchedFile,
)

__all__ = [
    "Duplicate",
    "Inbox",
    "InboxError",
    "OnOutcome",
    "Outcome",
    "OutcomeKind",
    "Reason",
    "Routed",
    "Rule",
    "Skipped",
    "Unmatched",
    "UnmatchedFile",
]
