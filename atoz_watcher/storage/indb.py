"""InDatabase: the bytes are base64 in ``document.RawBase64``; there is no file."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection

from atoz_watcher.rules.naming import free_name_candidates
from atoz_watcher.storage.base import Content, Stored, require_plain
from atoz_watcher.storage.spool import Spool


class InDatabase:
    kind = "InDatabase"

    def put(self, *, folder: str, file_name: str, data: Content, taken: Collection[str]) -> Stored:
        del folder
        if isinstance(data, Spool):  # the row holds the whole content as base64 anyway
            data = data.path.read_bytes()
        wanted = require_plain(file_name, "file name")
        name = next((n for n in free_name_candidates(wanted) if n not in taken), None)
        if name is None:
            raise FileExistsError(f"no free name near {wanted} among the patient's documents")
        return Stored(file_name=name, raw_base64=base64.b64encode(data).decode("ascii"))

    @staticmethod
    def new_spool() -> Spool:
        # The system's temporary folder: the bytes end up in the row, never in a file.
        return Spool(None, durable=False)

    def discard(self, stored: Stored) -> None:
        del stored  # nothing outside the row

    def read(self, *, folder: str, file_name: str, raw_base64: str) -> bytes:
        del folder, file_name
        try:
            return base64.b64decode(raw_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"document.RawBase64 is not valid base64: {exc}") from None
