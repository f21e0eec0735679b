"""Native watching: a lean inotify emitter for watchdog's observer, watching only the folders
that matter.

watchdog's own inotify emitter keeps about 650 bytes of Python objects per watched folder (a
watch object with its own callback dict, the path twice, three dict entries) and watches every
folder of the tree, ``Thumbnails`` included: on 40,000 patient folders that is 22 MB before any
work is done. Files only ever matter directly in a patient folder, so this emitter watches the
root, the letter folders and the patient folders (``max_depth`` 2), skips ignored folders, and
keeps one ``dict`` entry per watch: the folder's path below the root, as bytes.

It speaks watchdog's language (an ``EventEmitter`` run by a ``BaseObserver``, dispatching
watchdog's event classes to the same handler as the polling observer) and adds two things
watchdog's emitter does not give: a kernel queue overflow is a call (``on_overflow``), not a
log record, and a folder the kernel will not watch for lack of watches fails the start (so
``auto`` falls back to polling) instead of being skipped in silence.

Event mapping, per watched folder: a file created, modified (or its attributes changed),
closed after writing, deleted, or renamed. A rename whose two halves (``IN_MOVED_FROM`` and
``IN_MOVED_TO``, one cookie) both fall inside the tree is one moved event; a rename in from
outside is a moved event with an empty source (the file is complete); a rename out is a deleted
event. A new or renamed folder is watched (with what it already holds, down to ``max_depth``)
before its event is queued, so nothing written after the event is missed and what came before
it is found by listing the folder.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Final

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
)
from watchdog.observers.api import (
    DEFAULT_OBSERVER_TIMEOUT,
    BaseObserver,
    EventEmitter,
    EventQueue,
    ObservedWatch,
)

log = structlog.get_logger("atoz_watcher.watch")

# <sys/inotify.h>
IN_MODIFY: Final = 0x00000002
IN_ATTRIB: Final = 0x00000004
IN_CLOSE_WRITE: Final = 0x00000008
IN_MOVED_FROM: Final = 0x00000040
IN_MOVED_TO: Final = 0x00000080
IN_CREATE: Final = 0x00000100
IN_DELETE: Final = 0x00000200
IN_DELETE_SELF: Final = 0x00000400
IN_MOVE_SELF: Final = 0x00000800
IN_UNMOUNT: Final = 0x00002000
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
IN_ONLYDIR: Final = 0x01000000
IN_DONT_FOLLOW: Final = 0x02000000
IN_EXCL_UNLINK: Final = 0x04000000
IN_ISDIR: Final = 0x40000000
IN_CLOEXEC: Final = 0o2000000
IN_NONBLOCK: Final = 0o4000

WATCH_MASK: Final = (
    IN_CREATE
    | IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
)
_HEADER: Final = struct.Struct("iIII")  # wd, mask, cookie, len (of the NUL-padded name)
_READ_SIZE: Final = 256 * 1024
# How long the second half of a rename may lag behind the first (they are almost always
# read together; a buffer boundary can split them).
_MOVE_PAIRING_S: Final = 0.01
# Out of watches, out of kernel memory, out of instances: the tree cannot be watched whole.
_FATAL: Final = frozenset({errno.ENOSPC, errno.ENOMEM, errno.EMFILE})

SkipDir = Callable[[Sequence[str]], bool]


class _Inotify:
    """One inotify instance: its descriptor and the three calls, through libc."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._add_watch = libc.inotify_add_watch
        self._add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._add_watch.restype = ctypes.c_int
        self._rm_watch = libc.inotify_rm_watch
        self._rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        self._rm_watch.restype = ctypes.c_int
        init = libc.inotify_init1
        init.argtypes = [ctypes.c_int]
        init.restype = ctypes.c_int
        fd = init(IN_CLOEXEC | IN_NONBLOCK)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd = fd

    def add(self, path: bytes) -> int:
        wd = int(self._add_watch(self.fd, path, WATCH_MASK))
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), os.fsdecode(path))
        return wd

    def remove(self, wd: int) -> None:
        self._rm_watch(self.fd, wd)  # EINVAL when the kernel has dropped it already: fine

    def read(self) -> bytes:
        try:
            return os.read(self.fd, _READ_SIZE)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        os.close(self.fd)


def parse(buffer: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(wd, mask, cookie, name) for each event in a buffer read from an inotify descriptor."""
    offset, size = 0, len(buffer)
    while offset + _HEADER.size <= size:
        wd, mask, cookie, length = _HEADER.unpack_from(buffer, offset)
        start = offset + _HEADER.size
        name = buffer[start : start + length].rstrip(b"\0")
        offset = start + length
        yield wd, mask, cookie, name


def _join(folder: bytes, name: bytes) -> bytes:
    return folder + b"/" + name if folder else name


def _depth(rel: bytes) -> int:
    return rel.count(b"/") + 1 if rel else 0


def _under(rel: bytes, folder: bytes) -> bool:
    return rel == folder or rel.startswith(folder + b"/")


class _WatchTable:
    """Watch descriptor -> folder below the root. The kernel numbers watches 1, 2, 3, ... in
    the order they are made, so a list indexed by descriptor holds them without a dict's table
    or an int object per watch (half the memory of a dict on a large tree)."""

    def __init__(self) -> None:
        self._folders: list[bytes | None] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def get(self, wd: int) -> bytes | None:
        return self._folders[wd] if 0 <= wd < len(self._folders) else None

    def put(self, wd: int, folder: bytes) -> None:
        if wd >= len(self._folders):
            self._folders.extend([None] * (wd + 1 - len(self._folders)))
        if self._folders[wd] is None:
            self._count += 1
        self._folders[wd] = folder

    def pop(self, wd: int) -> None:
        if self.get(wd) is not None:
            self._folders[wd] = None
            self._count -= 1

    def under(self, top: bytes) -> list[int]:
        """The descriptors of ``top`` and the folders below it."""
        return [wd for wd, rel in enumerate(self._folders) if rel is not None and _under(rel, top)]

    def clear(self) -> None:
        self._folders.clear()
        self._count = 0


class TreeEmitter(EventEmitter):
    """Watches ``watch.path`` and its folders down to ``max_depth`` (0 = the root only)."""

    def __init__(
        self,
        event_queue: EventQueue,
        watch: ObservedWatch,
        *,
        timeout: float = DEFAULT_OBSERVER_TIMEOUT,
        event_filter: list[type[FileSystemEvent]] | None = None,
        max_depth: int,
        skip_dir: SkipDir,
        on_overflow: Callable[[], None],
    ) -> None:
        super().__init__(event_queue, watch, timeout=timeout, event_filter=event_filter)
        self._root = os.fsencode(watch.path).rstrip(b"/") or b"/"
        self._max_depth = max_depth
        self._skip_dir = skip_dir
        self._on_overflow = on_overflow
        self._inotify: _Inotify | None = None
        self._folders = _WatchTable()
        self._moves: dict[int, tuple[bytes, bool]] = {}  # cookie -> (source, is a folder)
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._wake_lock = threading.Lock()  # the pipe is not closed while a stop writes to it
        self._poller = select.poll()  # the inotify descriptor and the pipe's end to read
        self._poller.register(self._wake_r, select.POLLIN)

    @property
    def watched(self) -> int:
        """How many folders are watched."""
        return len(self._folders)

    # -- life -------------------------------------------------------------------------------

    def on_thread_start(self) -> None:
        """Watch the tree before the thread starts; ``OSError`` when it cannot be watched
        whole (the caller may fall back to polling)."""
        self._inotify = _Inotify()
        self._poller.register(self._inotify.fd, select.POLLIN)
        try:
            self._watch_tree(b"", new=False)
        except OSError:
            self._close()
            raise

    def on_thread_stop(self) -> None:
        with self._wake_lock:
            if self._wake_w >= 0:
                os.write(self._wake_w, b"x")

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._close()

    def _close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()  # drops every watch
            self._inotify = None
        with self._wake_lock:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1
        self._folders.clear()

    # -- reading ----------------------------------------------------------------------------

    def queue_events(self, timeout: float) -> None:
        inotify = self._inotify
        if inotify is None or not self._readable(inotify, timeout):
            return
        while True:
            for wd, mask, cookie, name in parse(inotify.read()):
                if self._moves and not (mask & IN_MOVED_TO and cookie in self._moves):
                    # The kernel queues a rename's two halves one after the other: whatever
                    # else comes after a first half means the folder it went to is not ours.
                    self._moved_out()
                self._dispatch(wd, mask, cookie, name)
            if not self._moves:
                return
            # A first half was the last event read: its second half may be in the next read.
            if not self._readable(inotify, _MOVE_PAIRING_S):
                self._moved_out()
                return

    def _readable(self, inotify: _Inotify, timeout: float) -> bool:
        """Wait for events; False on timeout or when woken to stop."""
        if self._wake_r < 0:
            return False
        ready = {fd for fd, _ in self._poller.poll(timeout * 1000)}
        return inotify.fd in ready and self._wake_r not in ready

    # -- events -----------------------------------------------------------------------------

    def _dispatch(self, wd: int, mask: int, cookie: int, name: bytes) -> None:
        if mask & IN_Q_OVERFLOW:
            log.warning("watch.queue_overflow", root=os.fsdecode(self._root))
            self._moves.clear()
            self._on_overflow()
            return
        if mask & IN_IGNORED:
            self._folders.pop(wd)  # the folder is gone, or its watch was removed
            return
        folder = self._folders.get(wd)
        if folder is None:  # an event still queued for a watch removed since
            return
        if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
            if not folder:
                log.error("watch.root_gone", root=os.fsdecode(self._root))
            return
        self._entry_event(_join(folder, name), mask, cookie)

    def _entry_event(self, rel: bytes, mask: int, cookie: int) -> None:
        """An event about an entry of a watched folder."""
        is_dir = bool(mask & IN_ISDIR)
        if mask & IN_MOVED_FROM:
            self._moves[cookie] = (rel, is_dir)
        elif mask & IN_MOVED_TO:
            self._moved_in(cookie, rel, is_dir)
        elif mask & IN_CREATE:
            if is_dir:
                self._watch_tree(rel, new=True)
            self._queue(DirCreatedEvent if is_dir else FileCreatedEvent, rel)
        elif mask & IN_DELETE:
            self._queue(DirDeletedEvent if is_dir else FileDeletedEvent, rel)
        elif is_dir:
            return  # a folder's own attributes: nothing to say
        elif mask & IN_CLOSE_WRITE:
            self._queue(FileClosedEvent, rel)
        elif mask & (IN_MODIFY | IN_ATTRIB):
            self._queue(FileModifiedEvent, rel)

    def _moved_in(self, cookie: int, rel: bytes, is_dir: bool) -> None:
        source = self._moves.pop(cookie, None)
        src = source[0] if source is not None else None
        if not is_dir:
            self._queue_move(FileMovedEvent, src, rel)
            return
        if src is not None:
            self._forget_tree(src)
        self._watch_tree(rel, new=True)
        self._queue_move(DirMovedEvent, src, rel)

    def _moved_out(self) -> None:
        """Renames whose second half never came: moved out of the tree, i.e. deleted here."""
        for rel, is_dir in self._moves.values():
            if is_dir:
                self._forget_tree(rel)
            self._queue(DirDeletedEvent if is_dir else FileDeletedEvent, rel)
        self._moves.clear()

    def _path(self, rel: bytes) -> bytes:
        return _join(self._root, rel) if rel else self._root

    def _full(self, rel: bytes) -> str:
        return os.fsdecode(self._path(rel))

    def _queue(self, kind: Callable[[str], FileSystemEvent], rel: bytes) -> None:
        self.queue_event(kind(self._full(rel)))

    def _queue_move(
        self, kind: Callable[[str, str], FileSystemEvent], src: bytes | None, dest: bytes
    ) -> None:
        self.queue_event(kind("" if src is None else self._full(src), self._full(dest)))

    # -- watches ----------------------------------------------------------------------------

    def _wanted(self, rel: bytes) -> bool:
        if _depth(rel) > self._max_depth:
            return False
        return not rel or not self._skip_dir(os.fsdecode(rel).split("/"))

    def _watch_tree(self, top: bytes, *, new: bool) -> None:
        """Watch ``top`` and the folders below it, down to ``max_depth``. For a folder that
        appeared while running (``new``), the folders it already held are announced as created,
        and a folder the kernel cannot watch is logged; at start, a full watch table fails."""
        pending = [top]
        while pending:
            rel = pending.pop()
            if not self._wanted(rel) or not self._add(rel, new=new):
                continue
            if _depth(rel) >= self._max_depth:
                continue
            for child in self._subfolders(rel):
                pending.append(child)
                if new:
                    self._queue(DirCreatedEvent, child)

    def _live(self) -> _Inotify:
        if self._inotify is None:
            raise RuntimeError("the emitter is not running")
        return self._inotify

    def _add(self, rel: bytes, *, new: bool) -> bool:
        """Watch one folder; False when it cannot be (logged), ``OSError`` when that must stop
        the start: the root itself, or no watches left."""
        path = self._path(rel)
        try:
            wd = self._live().add(path)
        except OSError as exc:
            if not new and (not rel or exc.errno in _FATAL):
                raise
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # not merely gone already
                reason = (
                    "no inotify watches left (raise fs.inotify.max_user_watches)"
                    if exc.errno == errno.ENOSPC
                    else exc.strerror
                )
                log.warning(
                    "watch.folder_not_watched",
                    path=os.fsdecode(path),
                    reason=reason,
                    covered_by="the periodic rescan",
                )
            return False
        self._folders.put(wd, rel)
        return True

    def _subfolders(self, rel: bytes) -> list[bytes]:
        path = self._path(rel)
        try:
            with os.scandir(path) as entries:
                return [
                    _join(rel, os.fsencode(entry.name))
                    for entry in entries
                    if entry.is_dir(follow_symlinks=False)
                ]
        except OSError:  # vanished or unreadable: the rescan reports it
            return []

    def _forget_tree(self, top: bytes) -> None:
        """Stop watching ``top`` and what is below it (moved away, or moved within the tree and
        about to be watched again under its new name)."""
        inotify = self._live()
        for wd in self._folders.under(top):
            self._folders.pop(wd)
            inotify.remove(wd)


class TreeObserver(BaseObserver):
    """watchdog's observer with ``TreeEmitter``: native events for the A-to-Z tree."""

    def __init__(
        self,
        *,
        max_depth: int,
        skip_dir: SkipDir,
        on_overflow: Callable[[], None],
        timeout: float = DEFAULT_OBSERVER_TIMEOUT,
    ) -> None:
        super().__init__(
            TreeEmitter,
            timeout=timeout,
            max_depth=max_depth,
            skip_dir=skip_dir,
            on_overflow=on_overflow,
        )
