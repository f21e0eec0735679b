"""Every file and folder the service opens, creates or renames under the A-to-Z root, reached
without following a link.

The root is opened once per operation and each folder below it is opened relative to its
parent's descriptor with ``O_NOFOLLOW | O_DIRECTORY``; files are opened, created, renamed and
removed relative to their folder's descriptor. A link anywhere below the root (a letter or
patient folder, ``Thumbnails/``, a file), swapped in at any moment, makes the step that meets it
fail with ``LinkRefusedError``: no byte is read or written through it. The root itself is taken
as configured (it may be a mount point reached through a link the administrator made).

What this module creates gets the group and the group permissions of the root, so the share
account of the Open Dental workstations can read and write it whatever user the service runs
as: where the root has the setgid bit the kernel gives the group, elsewhere we change it when
allowed; the group's read/write (and search, for folders) bits are those of the root, whatever
the process's umask.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

import structlog

from atoz_watcher.system.fsops import rename_noreplace_at

log = structlog.get_logger("atoz_watcher.contained")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_COPY_CHUNK = 1024 * 1024
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_GROUP_RW = stat.S_IRGRP | stat.S_IWGRP


class LinkRefusedError(OSError):
    """A link was met below the A-to-Z root; it is never followed."""

    def __init__(self, relative: str) -> None:
        super().__init__(errno.ELOOP, "a link below the A-to-Z root, refused", relative)
        self.relative = relative


class NotRegularError(OSError):
    """A FIFO, device or socket where a file was to be read: never opened for its content."""

    def __init__(self, relative: str) -> None:
        super().__init__(errno.EINVAL, "not a regular file", relative)


class OutsideRootError(ValueError):
    """A path that is not below the A-to-Z root, or has a part that is not a plain name."""


def _component(name: str) -> bool:
    """One path component on this system. Looser than ``rules.naming.plain`` (a name from the
    database, read on Windows too): a name found on disk may hold a backslash."""
    return name not in {"", ".", ".."} and "/" not in name and "\0" not in name


@dataclass(frozen=True, slots=True)
class Ownership:
    """The group and group permissions of the root, to give what we create."""

    gid: int  # the root's group
    file_bits: int  # group read/write of the root, for files
    dir_bits: int  # group read/write/search of the root, and its setgid bit, for folders

    @classmethod
    def of(cls, root: os.stat_result) -> Ownership:
        return cls(
            gid=root.st_gid,
            file_bits=root.st_mode & _GROUP_RW,
            dir_bits=root.st_mode & (stat.S_IRWXG | stat.S_ISGID),
        )

    def apply(self, fd: int, *, directory: bool) -> None:
        """Give a file or folder we just created the root's group and its group bits.

        Below setgid folders the kernel has already given the group (no chown then); a
        folder made below one that lacks the bit (made by someone else) is changed here, and
        a folder we make carries the root's setgid bit on, so its own files get the group.
        """
        info = os.fstat(fd)
        if info.st_gid != self.gid:
            try:
                os.fchown(fd, -1, self.gid)
            except PermissionError:
                pass  # not a member of the root's group: `check` reports it
            else:
                info = os.fstat(fd)  # a chown may clear the setgid bit
        bits = self.dir_bits if directory else self.file_bits
        mode = stat.S_IMODE(info.st_mode)
        if mode | bits != mode:
            os.fchmod(fd, mode | bits)


class Folder:
    """An open folder below the root: its entries are reached through its descriptor only."""

    def __init__(self, fd: int, relative: str, ownership: Ownership) -> None:
        self.fd = fd
        self.relative = relative  # to the root, for messages and logs
        self._ownership = ownership

    def _where(self, name: str) -> str:
        return f"{self.relative}/{name}" if self.relative else name

    def refuse(self, name: str) -> LinkRefusedError:
        """The error for a link at ``name``, logged once here."""
        where = self._where(name)
        log.warning("path.link_refused", path=where)
        return LinkRefusedError(where)

    def _is_link(self, name: str) -> bool:
        try:
            info = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            return False
        return stat.S_ISLNK(info.st_mode)

    def _swapped(self, name: str, exc: OSError) -> bool:
        """Did opening ``name`` as a folder fail because it is (or was, a moment ago) a link?

        ELOOP from ``O_NOFOLLOW`` on one name means just that. ENOTDIR means it was no folder
        when opened: a link (some kernels say ENOTDIR for ``O_DIRECTORY``), unless it is a
        plain file; found a folder now, it was a link swapped back meanwhile.
        """
        if exc.errno == errno.ELOOP:
            return True
        if exc.errno != errno.ENOTDIR:
            return False
        try:
            mode = os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode
        except OSError:
            return False
        return stat.S_ISLNK(mode) or stat.S_ISDIR(mode)

    def _check(self, name: str) -> str:
        if not _component(name):
            raise OutsideRootError(f"not a plain name: {name!r}")
        return name

    def open_dir(self, name: str, *, create: bool = False) -> Folder:
        """The subfolder ``name`` (made, with the root's group, when ``create``)."""
        self._check(name)
        tried = made = False
        while True:
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
                break
            except FileNotFoundError:
                if not create or tried:
                    raise
                tried = True
                try:
                    os.mkdir(name, 0o777, dir_fd=self.fd)
                    made = True
                except FileExistsError:
                    pass  # someone else made it meanwhile: open theirs, as it is
            except OSError as exc:
                if self._swapped(name, exc):
                    raise self.refuse(name) from None
                raise
        folder = Folder(fd, self._where(name), self._ownership)
        if made:
            try:
                self._ownership.apply(fd, directory=True)
            except OSError:
                folder.close()
                raise
        return folder

    def open_read(self, name: str) -> BinaryIO:
        """A regular file for reading; a link is refused, a folder is IsADirectoryError."""
        self._check(name)
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP or self._is_link(name):
                raise self.refuse(name) from None
            raise
        try:
            self._require_regular(fd, name)
            os.set_blocking(fd, True)  # O_NONBLOCK only kept a FIFO from hanging the open
        except BaseException:
            os.close(fd)
            raise
        return open(fd, "rb", closefd=True)  # noqa: PTH123 - a descriptor, not a path

    def _require_regular(self, fd: int, name: str) -> None:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", self._where(name))
        if not stat.S_ISREG(mode):
            raise NotRegularError(self._where(name))

    def read_bytes(self, name: str) -> bytes:
        with self.open_read(name) as handle:
            return handle.read()

    def lstat(self, name: str) -> os.stat_result:
        return os.stat(self._check(name), dir_fd=self.fd, follow_symlinks=False)

    def lexists(self, name: str) -> bool:
        try:
            self.lstat(name)
        except FileNotFoundError:
            return False
        return True

    def write_temporary(self, data: bytes | BinaryIO, *, suffix: str) -> str:
        """A new hidden file holding ``data`` (bytes, or what is left to read of a file),
        synced, with the root's group; its name."""
        name = f".{uuid.uuid4().hex}{suffix}"
        fd = os.open(name, _CREATE_FLAGS, 0o666, dir_fd=self.fd)
        try:
            with open(fd, "wb", closefd=False) as handle:
                if isinstance(data, bytes):
                    handle.write(data)
                else:
                    shutil.copyfileobj(data, handle, _COPY_CHUNK)
                handle.flush()
                self._ownership.apply(fd, directory=False)
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            self.unlink(name, missing_ok=True)
            raise
        os.close(fd)
        return name

    def rename_noreplace(self, src: str, dst: str) -> None:
        """Rename within this folder unless ``dst`` exists (FileExistsError then)."""
        rename_noreplace_at(self.fd, self._check(src), self.fd, self._check(dst))

    def move_in(self, source: Folder, src: str, dst: str) -> None:
        """Rename ``src`` in ``source`` to ``dst`` here unless ``dst`` exists (FileExistsError
        then); the file then gets the root's group, as if made here."""
        rename_noreplace_at(source.fd, source._check(src), self.fd, self._check(dst))
        fd = os.open(dst, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        try:
            self._ownership.apply(fd, directory=False)
        finally:
            os.close(fd)

    def replace(self, src: str, dst: str) -> None:
        """Rename within this folder over ``dst`` (a link at ``dst`` is replaced, not followed)."""
        os.rename(self._check(src), self._check(dst), src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str, *, missing_ok: bool = False) -> None:
        try:
            os.unlink(self._check(name), dir_fd=self.fd)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Tree:
    """The A-to-Z root, walked without following links below it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def parts(self, path: Path) -> tuple[str, ...]:
        """``path``'s parts below the root; OutsideRootError when it is not below it or a part
        is not a plain name (no ``..``: the walk never climbs)."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            raise OutsideRootError(f"{path} is not below the A-to-Z root") from None
        found = relative.parts
        if not all(_component(p) for p in found):
            raise OutsideRootError(f"{relative} has a part that is not a plain name")
        return found

    def _open_root(self) -> Folder:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            ownership = Ownership.of(os.fstat(fd))
        except BaseException:
            os.close(fd)
            raise
        return Folder(fd, "", ownership)

    @contextmanager
    def folder(self, parts: tuple[str, ...] | Path, *, create: bool = False) -> Iterator[Folder]:
        """The folder at ``parts`` below the root (or at the Path ``parts``), each step
        without following a link; made with the root's group where missing, when ``create``."""
        names = self.parts(parts) if isinstance(parts, Path) else parts
        current = self._open_root()
        try:
            for name in names:
                step = current.open_dir(name, create=create)
                current.close()
                current = step
            yield current
        finally:
            current.close()

    @contextmanager
    def open_read(self, path: Path) -> Iterator[BinaryIO]:
        """The regular file at ``path`` (below the root) for reading, never through a link."""
        names = self.parts(path)
        if not names:
            raise OutsideRootError("the A-to-Z root is not a file")
        with self.folder(names[:-1]) as folder, folder.open_read(names[-1]) as handle:
            yield handle

    def read_bytes(self, path: Path) -> bytes:
        with self.open_read(path) as handle:
            return handle.read()

    def lstat(self, path: Path) -> os.stat_result:
        names = self.parts(path)
        with self.folder(names[:-1]) as folder:
            return folder.lstat(names[-1])

    def replace_file(self, path: Path, data: bytes) -> None:
        """Write ``path`` atomically (a temporary file, then a rename over it; a link there
        is replaced, not followed), making its own folder (``Thumbnails/``) where missing, not
        the ones above; the folder made and the file carry the root's group."""
        names = self.parts(path)
        if len(names) < 2:  # noqa: PLR2004 - a folder and a file
            raise OutsideRootError(f"{path} is not in a folder below the A-to-Z root")
        with self.folder(names[:-2]) as parent, parent.open_dir(names[-2], create=True) as folder:
            temporary = folder.write_temporary(data, suffix=".tmp")
            try:
                folder.replace(temporary, names[-1])
            except BaseException:
                folder.unlink(temporary, missing_ok=True)
                raise
