"""The one lock around pdfium, which keeps per-process state and is not thread-safe.

Every module that calls pypdfium2 holds it for each call (open, render, import, save, close),
never across a ``yield``. (``imaging/render.py`` still has its own ``_PDFIUM_LOCK``; it should
take this one when the restructuring lands, or two threads could be inside pdfium at once.)
"""

from __future__ import annotations

import threading
from typing import Final

PDFIUM_LOCK: Final = threading.Lock()
