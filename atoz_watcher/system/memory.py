"""Hand freed heap memory back to the operating system after a large, short-lived allocation.

A whole-tree rescan builds a few hundred thousand short-lived objects. CPython returns its own
small-object arenas once they are empty, but the C allocator (glibc) keeps what larger objects
(dict tables, lists, row buffers) freed in the middle of its heaps and in other threads' arenas,
so a long-running daemon keeps the high-water mark of its last rescan. glibc's
``malloc_trim(0)`` releases those free pages. Other C libraries (musl, macOS) have no such
call: there it is a no-op.
"""

from __future__ import annotations

import ctypes


def release_free_memory() -> bool:
    """Ask the C allocator to return its free pages to the system; True when it could be asked.

    Looked up at each call (a few microseconds, once per whole-tree rescan) rather than cached
    in a module global.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the symbols already loaded: libc's among them
    except (AttributeError, OSError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True
