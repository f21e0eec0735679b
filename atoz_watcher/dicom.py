"""DICOM windowing, read the way Open Dental stores it in document.WindowingMin/Max."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pydicom

# pydicom is imported when a .dcm first arrives, not at start: it (and what it pulls in) would
# cost every daemon about 9 MB for a file type many practices never drop in the folder.


@dataclass(frozen=True, slots=True)
class Windowing:
    minimum: int
    maximum: int


NO_WINDOWING = Windowing(0, 0)

# document.WindowingMin/WindowingMax are MySQL int columns.
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _damaged() -> tuple[type[BaseException], ...]:
    """How pydicom reports a damaged file besides InvalidDicomError: a header cut short
    (struct.error), an unknown VR (NotImplementedError), a value of the wrong length
    (BytesLengthException, raised when the element is first read)."""
    from pydicom.errors import BytesLengthException, InvalidDicomError  # noqa: PLC0415

    return (InvalidDicomError, EOFError, struct.error, NotImplementedError, BytesLengthException)


def _first(value: object) -> float | None:
    if value is None:
        return None
    from pydicom.multival import MultiValue  # noqa: PLC0415 - see the note at the top

    if isinstance(value, MultiValue | list | tuple):
        items = list(value)
        return float(items[0]) if items else None
    return float(value)  # type: ignore[arg-type]


def _window(low: float, high: float) -> Windowing | None:
    """``[low, high]`` rounded; None when empty, not finite or too large for an int column."""
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        return None
    window = Windowing(round(low), round(high))
    if window.minimum < _INT_MIN or window.maximum > _INT_MAX:
        return None
    return window


def read_windowing(path: Path) -> Windowing:
    """The file's window (centre C, width W) as ``[C - W/2, C + W/2]``, rounded.

    Falls back to Smallest/LargestImagePixelValue, then to (0, 0), which Open Dental treats as
    "no windowing stored"; a window that is not finite or does not fit the int columns is no
    window. A file that is not DICOM at all, or is damaged, raises ValueError.
    """
    import pydicom  # noqa: PLC0415 - see the note at the top

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, force=False)
        return _windowing_of(dataset)
    except _damaged() as exc:
        raise ValueError(f"{path.name} is not a DICOM file: {exc}") from None


def _windowing_of(dataset: pydicom.Dataset) -> Windowing:
    centre = _first(dataset.get("WindowCenter"))
    width = _first(dataset.get("WindowWidth"))
    if centre is not None and width is not None and width > 0:
        window = _window(centre - width / 2, centre + width / 2)
        if window is not None:
            return window
    low = _first(dataset.get("SmallestImagePixelValue"))
    high = _first(dataset.get("LargestImagePixelValue"))
    if low is not None and high is not None:
        return _window(low, high) or NO_WINDOWING
    return NO_WINDOWING
