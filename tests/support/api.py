"""The Documents API for the tests: a real uvicorn server on loopback, called with httpx.

The API keys and the payload below are registered as secrets (tests/support/leaks.py): the
suite fails if any of them reaches a log line or an error body.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from atoz_watcher.api import ApiServer
from atoz_watcher.app.wiring import build_api
from atoz_watcher.config.sections import ApiKey, ApiSettings, ThumbnailSettings
from atoz_watcher.config.settings import Settings
from tests.support.leaks import SECRETS
from tests.support.waiting import wait_for
from tests.support.worlds import World

DEV, CUST = "dev-KEY-7f3a9c2e41b8", "cust-KEY-91bc5d07e6fa"
AUTH = {"Authorization": f"ODFHIR {DEV}/{CUST}"}
KEYS = (
    ApiKey(developer_key="another-dev", customer_key="another-cust"),
    ApiKey(developer_key=DEV, customer_key=CUST),
)
PAYLOAD = bytes(range(256)) * 40
SECRETS.add(DEV, CUST, *(k.developer_key for k in KEYS), *(k.customer_key for k in KEYS))
SECRETS.add_payload(base64.b64encode(PAYLOAD).decode("ascii"))
STOP_S = 15.0


def api_settings(
    world: World, *, storage: str = "LocalAtoZ", thumbnails: bool = False, **api: Any
) -> Settings:
    return Settings(
        atoz_path=world.root,
        database_url=world.url,
        state_dir=world.state,
        storage=storage,
        api=ApiSettings(keys=KEYS, **api),
        thumbnails=ThumbnailSettings(enabled=thumbnails, backfill_days=0),
    )


@contextmanager
def serving(settings: Settings, world: World) -> Iterator[httpx.Client]:
    """The API on a free loopback port; stopped, and every thread it started gone, after."""
    before = set(threading.enumerate())
    server = ApiServer(build_api(settings, world.engine), host="127.0.0.1", port=0)
    server.start()
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as client:
            yield client
    finally:
        server.stop()
        # The server's worker threads end with its event loop; wait for them, never sleep.
        wait_for(
            lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()],
            timeout=STOP_S,
        )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


FIELDS = [
    "DocNum",
    "MountNum",
    "PatNum",
    "FileName",
    "filePath",
    "Description",
    "Note",
    "DateCreated",
    "docCategory",
    "DocCategory",
    "ImgType",
    "ToothNumbers",
    "DateTStamp",
    "serverDateTime",
]
UPLOAD = "/api/v1/documents/Upload"
SET_BY_URL = "/api/v1/documents/SetByUrl"
DOCUMENTS = "/api/v1/documents"
