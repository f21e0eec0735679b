"""SetByUrl placeholders in a test world, made as the API makes them."""

from __future__ import annotations

from atoz_watcher.documents.writer import DocumentWriter, NewDocument
from atoz_watcher.storage import LocalAtoZ
from tests.support.worlds import World


def set_by_url(world: World, pat: int, url: str) -> int:
    """A SetByUrl placeholder, made as our API makes it."""
    writer = DocumentWriter(world.engine, LocalAtoZ(world.root), lock_timeout_s=30)
    created = writer.create_placeholder(
        NewDocument(pat_num=pat, extension="", description="Pano"), f"_download_:{url}"
    )
    return created.doc_num
