"""The one wiring place: Settings in, the service's parts out (as uvicorn's ``Config.load()``).

The rules that join two sections live here and nowhere else: new documents get a thumbnail
only when thumbnails are on and Open Dental keeps its files in the folder (LocalAtoZ); every
writer waits ``scan.lock_timeout`` for the registration lock; one renderer, and so one memory
budget, serves the daemon's thumbnails, the materialiser and the API. The daemon, the API and
the commands take their parts from ``Components`` and read no Settings to rebuild them.

Each part is built once, on first use (from the thread that wires, before the service's
threads start): a command pays only for the imports of what it uses. ``atoz-watcher rescan``
is timed from a fresh process (bench/rescan.py), and Pillow, FastAPI and prometheus_client
would add a third of a second to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from atoz_watcher.config.settings import Settings
from atoz_watcher.ingest.registrar import Registrar
from atoz_watcher.rules.ignore import IgnoreRules
from atoz_watcher.system.journal import Journal

# Imported where a part is built: see the module's docstring.
if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp

    from atoz_watcher.db.activity import ActivityLog
    from atoz_watcher.documents.materializer import Materializer
    from atoz_watcher.documents.writer import DocumentWriter
    from atoz_watcher.imaging.jobs import OnStored
    from atoz_watcher.imaging.queue import ThumbnailWorker
    from atoz_watcher.imaging.render import Renderer
    from atoz_watcher.inbox import Inbox
    from atoz_watcher.inbox.filer import OnStep
    from atoz_watcher.storage import Storage
    from atoz_watcher.system.metrics import Metrics
    from atoz_watcher.system.status import StatusBoard
    from atoz_watcher.ui.parts import UiParts


@dataclass(frozen=True)
class Components:
    """The parts built from one Settings over one engine (the caller's to dispose)."""

    settings: Settings
    engine: Engine
    # A one-shot command renders each new document's thumbnail on its own thread; the
    # daemon hands it to its thumbnail queue.
    inline_thumbnails: bool = False
    # Called after each durable step of filing an inbox file (the crash tests kill there).
    inbox_on_step: OnStep | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine: Engine,
        *,
        inline_thumbnails: bool = False,
        inbox_on_step: OnStep | None = None,
    ) -> Components:
        """The parts ``settings`` describe; each is made when first asked for."""
        return cls(settings, engine, inline_thumbnails, inbox_on_step)

    @property
    def in_database(self) -> bool:
        """Open Dental keeps the files in ``document.RawBase64`` (AtoZfolderUsed InDatabase)."""
        return self.settings.storage == "InDatabase"

    @property
    def thumbnails(self) -> bool:
        """Do new documents get a thumbnail? Thumbnails are files in the folder's Thumbnails/
        subfolders: only when they are on and the files are in the folder."""
        return self.settings.thumbnails.enabled and not self.in_database

    @cached_property
    def metrics(self) -> Metrics:
        """The daemon's counters; the materialiser reports to them too."""
        from atoz_watcher.system.metrics import Metrics  # noqa: PLC0415 - see the docstring

        return Metrics()

    @cached_property
    def storage(self) -> Storage:
        """Where a document's bytes go, as Open Dental is set (``storage``)."""
        from atoz_watcher.storage import InDatabase, LocalAtoZ  # noqa: PLC0415

        if self.in_database:
            return InDatabase()
        return LocalAtoZ(self.settings.atoz_path)

    @cached_property
    def renderer(self) -> Renderer:
        """The renderer ``[thumbnails]`` describes, with the process's one memory budget. The
        API renders with it on request (Thumbnails, DownloadMount) whatever ``thumbnails``."""
        from atoz_watcher.imaging.render import thumbnail_renderer  # noqa: PLC0415

        return thumbnail_renderer(self.settings.thumbnails)

    @property
    def thumbnailer(self) -> Renderer | None:
        """The renderer for new documents' thumbnails; None when they get none."""
        return self.renderer if self.thumbnails else None

    @cached_property
    def thumbnail_queue(self) -> ThumbnailWorker | None:
        """The daemon's thumbnail threads (with the backfill ``[thumbnails]`` asks for), fed by
        registration, the materialiser and the API it serves; None when no thumbnails are made
        or a one-shot command renders them itself. Its owner starts and closes it."""
        if not self.thumbnails or self.inline_thumbnails:
            return None
        from atoz_watcher.imaging.backfill import Backfill  # noqa: PLC0415
        from atoz_watcher.imaging.queue import ThumbnailWorker, default_workers  # noqa: PLC0415

        section = self.settings.thumbnails
        workers = default_workers(section.workers)
        backfill = None
        if section.backfill_days > 0:
            backfill = Backfill(
                self.engine,
                self.renderer,
                self.settings.atoz_path,
                workers=workers,
                low_priority=True,
            )
        return ThumbnailWorker(
            self.renderer,
            workers=workers,
            metrics=self.metrics,
            backfill=backfill,
            backfill_days=section.backfill_days,
        )

    @cached_property
    def on_stored(self) -> OnStored:
        """Where a stored file's thumbnail job goes: the queue, rendered now (one-shot
        commands), or nowhere when new documents get no thumbnail."""
        from atoz_watcher.imaging.jobs import no_thumbnails  # noqa: PLC0415
        from atoz_watcher.imaging.queue import RenderNow  # noqa: PLC0415

        if not self.thumbnails:
            return no_thumbnails
        queue = self.thumbnail_queue
        return RenderNow(self.renderer) if queue is None else queue.submit

    @cached_property
    def writer(self) -> DocumentWriter:
        """The API's document writer, under the registration lock."""
        from atoz_watcher.documents.writer import DocumentWriter  # noqa: PLC0415

        return DocumentWriter(
            self.engine, self.storage, lock_timeout_s=self.settings.scan.lock_timeout
        )

    @cached_property
    def inbox(self) -> Inbox | None:
        """The scanner inboxes of ``[[inbox.folders]]``, filing through ``writer``, their new
        documents' thumbnails to ``on_stored``, their outcomes counted in ``metrics``; None
        when there is no inbox folder."""
        section = self.settings.inbox
        if not section.folders:
            return None
        from atoz_watcher.inbox import Inbox  # noqa: PLC0415
        from atoz_watcher.inbox.filer import no_step  # noqa: PLC0415

        metrics = self.metrics
        return Inbox(
            self.engine,
            self.writer,
            self.storage,
            section,
            atoz_root=self.settings.atoz_path,
            lock_timeout_s=self.settings.scan.lock_timeout,
            on_stored=self.on_stored,
            on_outcome=lambda kind, detail: metrics.inbox(kind.value, detail),
            on_step=self.inbox_on_step or no_step,
            activity=self.activity,
        )

    @property
    def ignore(self) -> IgnoreRules:
        """What the tree's watcher and rescans leave alone: ``watcher.ignore``, and the inbox
        folders inside the A-to-Z root (the inbox's files are not a patient's)."""
        return ignore_rules(self.settings)

    @cached_property
    def reader(self) -> Engine:
        """The API's engine for reads, which never wait for the registration lock. The API
        closes it when it stops (see ``create_app``)."""
        from atoz_watcher.db.engine import read_engine  # noqa: PLC0415

        return read_engine(self.engine)

    @cached_property
    def registrar(self) -> Registrar:
        """The registrar, journalling in the state directory."""
        return registrar_for(self.settings, self.engine)

    @cached_property
    def materializer(self) -> Materializer:
        """The materialiser, reporting its outcomes to ``metrics``."""
        from atoz_watcher.documents.materializer import Materializer  # noqa: PLC0415

        return Materializer(
            self.engine,
            self.storage,
            self.settings.materializer,
            lock_timeout_s=self.settings.scan.lock_timeout,
            on_stored=self.on_stored,
            on_outcome=self.metrics.materialized,
        )

    @cached_property
    def activity(self) -> ActivityLog:
        """How each document came and what went wrong: the log in the state directory that
        the daemon, the inbox and the API write and the front-desk page reads."""
        from atoz_watcher.db.activity import ActivityLog  # noqa: PLC0415

        return ActivityLog.in_state_dir(self.settings.state_path)

    @cached_property
    def status_board(self) -> StatusBoard:
        """The daemon's status board: it writes, the front-desk page (served by the same
        process) reads."""
        from atoz_watcher.system.status import StatusBoard  # noqa: PLC0415

        return StatusBoard()

    def ui_parts(self, *, status: StatusBoard | None) -> UiParts:
        """What the front-desk page works with. ``status``: the daemon's board (None without a
        watcher in the process). The thumbnails of what it files go where the inbox's go
        (``on_stored``: the daemon's queue, or rendered at once in ``atoz-watcher api``)."""
        from atoz_watcher.ui.parts import UiParts  # noqa: PLC0415

        return UiParts(
            reader=self.reader,
            engine=self.engine,
            storage=self.storage,
            root=self.settings.atoz_path,
            in_database=self.in_database,
            renderer=self.renderer,
            inbox=self.inbox,
            activity=self.activity,
            status=status,
            on_stored=self.on_stored,
            today_limit=self.settings.ui.today_limit,
        )

    def ui(self, *, status: StatusBoard | None) -> FastAPI:
        """The front-desk page over these parts (``ui_parts``), to mount at /ui."""
        from atoz_watcher.ui.app import create_ui  # noqa: PLC0415

        return create_ui(self.settings.ui, self.ui_parts(status=status))

    def server_app(
        self,
        *,
        api: bool,
        status: StatusBoard | None = None,
        on_placeholder: Callable[[], None] | None = None,
        on_stored: OnStored | None = None,
    ) -> FastAPI:
        """What the server on [api] host/port serves: the Documents API (when ``api``; see
        ``api`` for ``on_placeholder`` and ``on_stored``) and, with ``[ui] enabled``, the
        front-desk page at /ui, where ``/`` then sends a browser; the page alone when ``api``
        is false. ``status``: the daemon's board, when the daemon runs in this process."""
        ui = self.ui(status=status) if self.settings.ui.enabled else None
        if not api:
            if ui is None:
                raise ValueError("nothing to serve: neither the API nor the page is on")
            from atoz_watcher.ui.app import standalone  # noqa: PLC0415

            reader = self.reader
            return standalone(ui, on_close=None if reader is self.engine else reader.dispose)
        return self.api(
            on_placeholder=on_placeholder,
            on_stored=on_stored,
            mounts={"/ui": ui} if ui is not None else None,
            home="/ui/" if ui is not None else None,
        )

    def api(
        self,
        *,
        on_placeholder: Callable[[], None] | None = None,
        on_stored: OnStored | None = None,
        mounts: Mapping[str, ASGIApp] | None = None,
        home: str | None = None,
    ) -> FastAPI:
        """The Documents API over these parts. ``on_placeholder`` is called after SetByUrl made
        a placeholder row (inside the daemon: wake the materialiser); ``on_stored`` takes the
        thumbnail jobs of what Upload and UploadSftp store (inside the daemon: its queue; None:
        the API runs a queue of its own while it serves)."""
        # FastAPI is imported only where the API runs: it costs every other command (and a
        # daemon without the API) about 15 MB and a third of a second.
        from atoz_watcher.api.app import ApiParts, create_app  # noqa: PLC0415
        from atoz_watcher.net.sftp import SftpClient  # noqa: PLC0415

        parts = ApiParts(
            engine=self.engine,
            reader=self.reader,
            writer=self.writer,
            storage=self.storage,
            root=self.settings.atoz_path,
            in_database=self.in_database,
            thumbnails=self.thumbnails,
            thumbnail_workers=self.settings.thumbnails.workers,
            renderer=self.renderer,
            sftp=SftpClient(self.settings.sftp),
            activity=self.activity,
        )
        return create_app(
            self.settings.api,
            parts,
            on_placeholder=on_placeholder,
            on_stored=on_stored,
            mounts=mounts,
            home=home,
        )


def registrar_for(settings: Settings, engine: Engine) -> Registrar:
    """A registrar journalling in ``settings``' state directory, waiting ``scan.lock_timeout``
    for the registration lock."""
    return Registrar(
        engine, Journal(settings.journal_dir), lock_timeout_s=settings.scan.lock_timeout
    )


def ignore_rules(settings: Settings) -> IgnoreRules:
    """``watcher.ignore``, plus every inbox folder inside the A-to-Z root with all it holds."""
    root = os.path.abspath(settings.atoz_path)  # noqa: PTH100 - as the events name paths
    inside: list[tuple[str, ...]] = []
    for folder in settings.inbox.folders:
        path = os.path.abspath(folder.path)  # noqa: PTH100
        if path.startswith(root + os.sep):
            inside.append(tuple(path[len(root) + 1 :].split(os.sep)))  # noqa: PTH206
    return IgnoreRules(settings.watcher.ignore, folders=inside)


def build_api(
    settings: Settings, engine: Engine, *, on_placeholder: Callable[[], None] | None = None
) -> FastAPI:
    """The Documents API ``settings`` describe, over ``engine``: ``Components.api`` for a
    caller that has nothing else to wire (``atoz-watcher api``, tests, benchmarks)."""
    return Components.from_settings(settings, engine).api(on_placeholder=on_placeholder)
