"""Which patient owns a folder, one folder at a time: the daemon's lookup (the rescan reads all
patients at once instead). Adoption of a computed folder name is shared by both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Engine

from atoz_watcher.db import queries
from atoz_watcher.rules.matching import FolderMatch, Unmatched, match_folder, trailing_pat_num


def adopt(engine: Engine, match: FolderMatch, name: str) -> FolderMatch | Unmatched:
    """Store ``name`` in patient.ImageFolder, as Open Dental does the first time it computes
    it. Someone else may have set it meanwhile: it counts only if they set this very name."""
    pat_num = match.patient.pat_num
    with engine.begin() as conn:
        if not queries.adopt_folder(conn, pat_num=pat_num, folder=name):
            row = queries.patient(conn, pat_num=pat_num)
            if row is None or row.image_folder != name:
                return Unmatched.NO_PATIENT
    return FolderMatch(patient=replace(match.patient, image_folder=name), adopt=True)


class FolderResolver:
    """Resolves ``<letter>/<name>`` to its patient with one small query, and remembers.

    A folder's owner never changes (Open Dental never recomputes ImageFolder), so a match is
    kept for good. "No patient" is kept only for ``retry_unmatched_s``: the patient may be
    created in Open Dental a minute after the scanner made the folder.
    """

    def __init__(
        self, engine: Engine, *, clock: Callable[[], float], retry_unmatched_s: float = 30.0
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._retry_unmatched_s = retry_unmatched_s
        self._matched: dict[tuple[str, str], FolderMatch] = {}
        self._unmatched: dict[tuple[str, str], tuple[float, Unmatched]] = {}

    def resolve(self, letter: str, name: str) -> FolderMatch | Unmatched:
        key = (letter, name)
        if key in self._matched:
            return self._matched[key]
        remembered = self._unmatched.get(key)
        if remembered is not None and self._clock() < remembered[0]:
            return remembered[1]
        with self._engine.connect() as conn:
            rows = queries.patients_for_folder(conn, folder=name, pat_num=trailing_pat_num(name))
        result = match_folder(letter, name, rows)
        if isinstance(result, FolderMatch) and result.adopt:
            result = adopt(self._engine, result, name)
        if isinstance(result, FolderMatch):
            self._matched[key] = result
            self._unmatched.pop(key, None)
        else:
            self._unmatched[key] = (self._clock() + self._retry_unmatched_s, result)
        return result
