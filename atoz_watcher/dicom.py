"""DICOM windowing, read the way Open Dental stores it in document.WindowingMin/Max."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue


@dataclass(frozen=True, slots=True)
class Windowing:
    minimum: int
    maximum: int


NO_WINDOWING = Windowing(0, 0)


def _first(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, MultiValue | list | tuple):
        items = list(value)
        return float(items[0]) if items else None
    return float(value)  # type: ignore[arg-type]


def read_windowing(path: Path) -> Windowing:
    """The file's window (centre C, width W) as ``[C - W/2, C + W/2]``, rounded.

    Falls back to Smallest/LargestImagePixelValue, then to (0, 0), which Open Dental treats as
    "no windowing stored". A file that is not DICOM at all raises ValueError.
    """
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, force=False)
    except (InvalidDicomError, EOFError) as exc:
        raise ValueError(f"{path.name} is not a DICOM file: {exc}") from None
    centre = _first(dataset.get("WindowCenter"))
    width = _first(dataset.get("WindowWidth"))
    if centre is not None and width is not None and width > 0:
        return Windowing(round(centre - width / 2), round(centre + width / 2))
    low = _first(dataset.get("SmallestImagePixelValue"))
    high = _first(dataset.get("LargestImagePixelValue"))
    if low is not None and high is not None and high > low:
        return Windowing(round(low), round(high))
    return NO_WINDOWING
