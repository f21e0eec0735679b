"""Which filesystem holds the A-to-Z root, and whether inotify hears what others write there.

inotify reports what this kernel does to a file. On a local disk (ext4, xfs, btrfs, zfs) that
is every write; on a CIFS or NFS mount it is only this machine's own writes, not those of Open
Dental's workstations writing to the server; on a FUSE mount it depends on the filesystem and
is mostly the same story. So ``auto`` watches natively only on a local filesystem.

Read from ``/proc/self/mountinfo`` (the mount whose point is the longest prefix of the root's
real path); pure apart from reading that file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MOUNTINFO = Path("/proc/self/mountinfo")

NETWORK = frozenset(
    {"cifs", "smb3", "smbfs", "nfs", "nfs4", "ceph", "glusterfs", "9p", "afs", "lustre", "gpfs"}
)
# FUSE filesystems that are network clients; other fuse.* types may be local (mergerfs).
NETWORK_FUSE = frozenset({"fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.davfs", "fuse.smbnetfs"})

Kind = Literal["local", "network", "fuse", "unknown"]
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Filesystem:
    type: str  # as the kernel names it: ext4, xfs, cifs, smb3, nfs4, fuse.sshfs, ...
    mount_point: str
    source: str  # //server/share, server:/export, /dev/sda1 (no credentials: the kernel drops them)

    @property
    def kind(self) -> Kind:
        if self.type in NETWORK or self.type in NETWORK_FUSE:
            return "network"
        if self.type == "fuse" or self.type.startswith(("fuse.", "fuseblk")):
            return "fuse"
        if self.type == "unknown":
            return "unknown"
        return "local"

    @property
    def is_smb(self) -> bool:
        return self.type in {"cifs", "smb3", "smbfs"}

    @property
    def inotify_sees_all(self) -> bool:
        """Does inotify hear writes made by other machines? Only on a local filesystem."""
        return self.kind == "local"


UNKNOWN = Filesystem(type="unknown", mount_point="", source="")


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Filesystem]:
    """Every mount in a ``/proc/<pid>/mountinfo`` text, in the order listed."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:  # noqa: PLR2004 - the file's format
            continue
        mounts.append(
            Filesystem(type=tail[0], mount_point=_unescape(fields[4]), source=_unescape(tail[1]))
        )
    return mounts


def filesystem_of(path: Path, *, mountinfo: Path = MOUNTINFO) -> Filesystem:
    """The filesystem ``path`` is on (the last mount over it wins, as in the kernel)."""
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return UNKNOWN
    real = os.path.realpath(path)
    best, best_len = UNKNOWN, -1
    for mount in parse_mountinfo(text):
        point = mount.mount_point.rstrip("/") or "/"
        inside = point in {"/", real} or real.startswith(point + "/")
        if inside and len(point) >= best_len:
            best, best_len = mount, len(point)
    return best
