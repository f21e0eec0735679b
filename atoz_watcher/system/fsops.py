"""File-system operations, each safe against a file appearing or going meanwhile."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from functools import cache
from pathlib import Path
from typing import Any

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


@cache
def _renameat2() -> Any:  # noqa: ANN401 - a ctypes function
    """glibc's renameat2, or None where the C library lacks it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    return getattr(libc, "renameat2", None)


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (FileExistsError then)."""
    rename_noreplace_at(_AT_FDCWD, os.fspath(src), _AT_FDCWD, os.fspath(dst))


def rename_noreplace_at(src_dir: int, src: str, dst_dir: int, dst: str) -> None:
    """Rename ``src`` (in the folder open as ``src_dir``, or relative to the working folder
    with ``_AT_FDCWD``) to ``dst`` unless ``dst`` exists (FileExistsError then).

    ``os.rename`` silently replaces an existing target on POSIX, which would destroy a file that
    a scanner dropped under the same name a moment ago. renameat2(RENAME_NOREPLACE) refuses
    atomically; where the kernel or file system lacks it (some network shares), a hard link
    plus unlink does the same; where links are refused too, a check-then-rename is the last
    resort. None of them follows a link at ``src`` or ``dst``.
    """
    func = _renameat2()
    if func is not None:
        result = func(src_dir, os.fsencode(src), dst_dir, os.fsencode(dst), _RENAME_NOREPLACE)
        if result == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), src, None, dst)
    src_fd = None if src_dir == _AT_FDCWD else src_dir
    dst_fd = None if dst_dir == _AT_FDCWD else dst_dir
    try:
        os.link(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        try:
            os.stat(dst, dir_fd=dst_fd, follow_symlinks=False)
        except FileNotFoundError:
            os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            return
        raise FileExistsError(errno.EEXIST, "File exists", dst) from None
    os.unlink(src, dir_fd=src_fd)


def is_folder(entry: os.DirEntry[str]) -> bool:
    """``entry`` is a folder, not a link to one; False when that cannot be told (it went, or
    may not be looked at): a walk passes it by rather than fail."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (temp file, fsync, rename, fsync dir)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)
