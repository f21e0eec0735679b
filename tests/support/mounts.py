"""Open Dental's mounts in a test world: a mount, its items, a document placed on an item."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from tests.support.worlds import World


def add_mount(world: World, pat: int, category: int, **columns: Any) -> int:
    return world._insert(
        "mount",
        {
            "PatNum": pat,
            "DocCategory": category,
            "DateCreated": datetime(2021, 5, 11),
            "Description": "4BW",
            "Note": "",
            **columns,
        },
    )


def add_mount_item(world: World, mount: int, order: int, **columns: Any) -> int:
    return world._insert(
        "mountitem", {"MountNum": mount, "ItemOrder": order, "TextShowing": "", **columns}
    )


def put_on_item(world: World, doc_num: int, item: int) -> None:
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE document SET MountItemNum = :i WHERE DocNum = :d"),
            {"i": item, "d": doc_num},
        )
