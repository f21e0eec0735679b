"""Find our cover codes on the pages of a scan, with zxing-cpp.

A QR code first and, on a page where none of ours is found, the Code 128 printed under it
(a QR code can be torn or stamped over). Only payloads :func:`atoz_watcher.rules.cover.decode`
accepts count: a foreign code (a URL, a vCard, a supplier's barcode) is no code.

Pages are read in grey at :data:`DPI` (``bench/inbox.py --resolutions`` measures the
choice): at 150 dpi every cover sheet in the degraded test scans (scanned at 200 and 300 dpi,
turned 90/180/270 degrees, skewed, grey, JPEG-noisy) decoded, by its Code 128 alone too; at
100 dpi the Code 128 alone was lost on a third to two thirds of them; 200 dpi found nothing
more and took 1.5 to 2 times as long to decode.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

import zxingcpp
from PIL import Image

from atoz_watcher.imaging.pages import iter_pages
from atoz_watcher.rules.cover import CoverCode, decode

DPI: Final = 150
_QR: Final = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
_CODE128: Final = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.Code128)


def _ours(barcodes: Iterable[zxingcpp.Barcode]) -> frozenset[CoverCode]:
    codes = (decode(barcode.text) for barcode in barcodes if barcode.valid)
    return frozenset(code for code in codes if code is not None)


def find_codes(page: Image.Image) -> frozenset[CoverCode]:
    """Our cover codes on ``page`` (usually none or one; two differing ones are a conflict
    the caller must not guess between)."""
    # Scanned paper is dark on light: trying the inverted image too only costs time.
    found = _ours(zxingcpp.read_barcodes(page, formats=_QR, try_invert=False))
    if found:
        return found
    return _ours(zxingcpp.read_barcodes(page, formats=_CODE128, try_invert=False))


def scan_codes(path: Path, *, dpi: float = DPI) -> list[frozenset[CoverCode]]:
    """Our cover codes on each page of the scan at ``path``, one page in memory at a time."""
    return [find_codes(page) for page in iter_pages(path, dpi=dpi, grayscale=True)]
