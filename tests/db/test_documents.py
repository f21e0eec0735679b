"""The writes to ``document``: a row inserted, filled, read back for materialising, deleted."""

from __future__ import annotations

import pytest

from atoz_watcher.db import documents
from atoz_watcher.db.rows import blank_document
from atoz_watcher.db.shape import TableShape
from tests.conftest import World


def test_insert_fill_and_delete_one_row(world: World) -> None:
    pat = world.add_patient("Smith", "John")
    note = "_download_:https://example.test/pano.png"
    with world.engine.begin() as conn:
        shape = TableShape.reflect(conn, "document")
        doc_num = documents.insert(
            conn, shape=shape, row=blank_document(PatNum=pat, Description="Pano", Note=note)
        )
        target = documents.fill_target(conn, doc_num=doc_num)
    assert target == documents.FillTarget(pat_num=pat, note=note, file_name="", description="Pano")

    with world.engine.begin() as conn:
        documents.fill(conn, doc_num=doc_num, fields={"FileName": "a.png", "Note": ""})
    (row,) = world.documents(pat)
    assert (row["DocNum"], row["FileName"], row["Note"], row["Description"]) == (
        doc_num,
        "a.png",
        "",
        "Pano",
    )

    with world.engine.begin() as conn:
        documents.delete(conn, doc_num=doc_num)
        assert documents.fill_target(conn, doc_num=doc_num) is None
    assert world.documents(pat) == []


def test_fill_names_only_the_files_columns(bare_world: World) -> None:
    with bare_world.engine.begin() as conn, pytest.raises(ValueError, match="PatNum"):
        documents.fill(conn, doc_num=1, fields={"FileName": "a.png", "PatNum": 2})


def test_raw_base64_limit_is_mysqls_alone(bare_world: World) -> None:
    with bare_world.engine.connect() as conn:
        limit = documents.raw_base64_limit(conn)
    if bare_world.kind == "sqlite":
        assert limit is None
    else:
        assert limit is not None
        assert 0 < limit <= documents.MEDIUMTEXT_BYTES
