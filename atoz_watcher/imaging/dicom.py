"""DICOM windowing, read the way Open Dental stores it in document.WindowingMin/Max."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from atoz_watcher.errors import ThumbnailError

if TYPE_CHECKING:
    import numpy as np
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


def read_windowing(path: Path, *, opened: BinaryIO | None = None) -> Windowing:
    """The file's window (centre C, width W) as ``[C - W/2, C + W/2]``, rounded.

    Falls back to Smallest/LargestImagePixelValue, then to (0, 0), which Open Dental treats as
    "no windowing stored"; a window that is not finite or does not fit the int columns is no
    window. A file that is not DICOM at all, or is damaged, raises ValueError. ``opened``:
    the file already open (``path`` then only names it).
    """
    import pydicom  # noqa: PLC0415 - see the note at the top

    try:
        dataset = pydicom.dcmread(
            path if opened is None else opened, stop_before_pixels=True, force=False
        )
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


# A frame is sampled down to at most this many pixels on its long side before it is turned
# into floating point for windowing: far more than a thumbnail or a mount cell needs, and the
# float copies of an 8000x10000 frame (640 MB each) are never made.
MAX_SIDE = 2048
# Besides the decoded frame: the frame's bytes as read from the file (native data), and the
# float64 working copies (values, scaled, clipped) of the sampled frame.
_FLOAT_COPIES = 3
_DEFER_BYTES = 4096


def _header(path: Path) -> pydicom.Dataset:
    import pydicom  # noqa: PLC0415 - see the note at the top

    try:
        # Large values (the pixel data) are left in the file, not read: only their tags.
        return pydicom.dcmread(path, defer_size=_DEFER_BYTES, force=False)
    except _damaged() as exc:
        raise ValueError(f"{path.name} is not a DICOM file: {exc}") from None


def _frame_shape(dataset: pydicom.Dataset, path: Path, max_pixels: int) -> tuple[int, int, int]:
    """Rows, columns and samples per pixel of one frame; ThumbnailError over ``max_pixels``."""
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    if rows * columns > max_pixels:
        raise ThumbnailError(
            path, f"decompression bomb: {columns}x{rows} is over {max_pixels:,} pixels"
        )
    return rows, columns, int(dataset.get("SamplesPerPixel", 1) or 1)


def decoding_bytes(path: Path, *, max_pixels: int) -> int:
    """What ``read_pixels`` holds at most for this file, from its header alone (no pixel is
    read): one frame of Rows x Columns x SamplesPerPixel x BitsAllocated (the first frame is
    the only one decoded, whatever NumberOfFrames says), twice, plus the float copies of the
    sampled frame. ThumbnailError over ``max_pixels``; ValueError for a file that is not DICOM.
    """
    dataset = _header(path)
    rows, columns, samples = _frame_shape(dataset, path, max_pixels)
    sample_bytes = max(1, -(-int(dataset.get("BitsAllocated", 8) or 8) // 8))
    frame = rows * columns * samples * sample_bytes
    step = _step(rows, columns)
    sampled = -(-rows // step) * -(-columns // step) * samples
    return 2 * frame + sampled * 8 * _FLOAT_COPIES


def _step(rows: int, columns: int) -> int:
    return max(1, -(-max(rows, columns) // MAX_SIDE))


def read_pixels(path: Path, *, max_pixels: int) -> np.ndarray[Any, Any]:
    """The first frame as 8-bit pixels (grey: rows x columns; colour: rows x columns x 3),
    sampled down to at most MAX_SIDE pixels on its long side.

    Only the first frame is read and decoded (a 20-frame series costs one frame). Grey images
    are shown through the file's window (centre/width, after the rescale slope and
    intercept), else stretched from their darkest to their lightest value; MONOCHROME1 is
    inverted so that bone stays white. Raises ThumbnailError for a frame over ``max_pixels``
    and ValueError for a file that is not DICOM, is damaged, or holds no pixels we can decode.
    """
    import numpy as np  # noqa: PLC0415 - see the note at the top
    from pydicom.pixels.utils import pixel_array  # noqa: PLC0415

    dataset = _header(path)
    rows, columns, samples = _frame_shape(dataset, path, max_pixels)
    if "PixelData" not in dataset:
        raise ValueError(f"{path.name} holds no image (no PixelData)")
    try:
        frame = pixel_array(path, index=0)
    except _damaged() as exc:
        raise ValueError(f"{path.name} is not a DICOM file: {exc}") from None
    except (RuntimeError, AttributeError, ValueError, KeyError) as exc:
        # pydicom's word for a file without PixelData, compressed pixel data with no decoder
        # installed, or a header that does not describe the pixel data.
        raise ValueError(f"{path.name}: cannot decode its pixel data: {exc}") from None
    step = _step(rows, columns)
    if step > 1:
        frame = frame[::step, ::step]
    if samples > 1:
        return _eight_bits(np.asarray(frame, dtype=np.float64), None)
    values = np.asarray(frame, dtype=np.float64)
    del frame
    values = values * float(dataset.get("RescaleSlope", 1) or 1) + float(
        dataset.get("RescaleIntercept", 0) or 0
    )
    window = _windowing_of(dataset)
    grey = _eight_bits(values, None if window == NO_WINDOWING else window)
    if str(dataset.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        grey = 255 - grey
    return grey


def _eight_bits(values: np.ndarray[Any, Any], window: Windowing | None) -> np.ndarray[Any, Any]:
    import numpy as np  # noqa: PLC0415 - see the note at the top

    if window is None:
        low, high = float(values.min()), float(values.max())
    else:
        low, high = float(window.minimum), float(window.maximum)
    span = high - low
    if span <= 0:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.clip((values - low) * (255.0 / span), 0, 255)
    return np.rint(scaled).astype(np.uint8)


_DICM_OFFSET = 128
_DICM = b"DICM"


def is_dicom(head: bytes) -> bool:
    """Whether a file's first bytes are a DICOM file's (the 128-byte preamble, then DICM)."""
    return head[_DICM_OFFSET : _DICM_OFFSET + len(_DICM)] == _DICM


def read_patient_id(path: Path) -> str | None:
    """The file's PatientID (0010,0020), stripped; None when it has none. Only the header is
    read. ValueError for a file that is not DICOM, or is damaged."""
    import pydicom  # noqa: PLC0415 - see the note at the top

    try:
        dataset = pydicom.dcmread(
            path, stop_before_pixels=True, specific_tags=["PatientID"], force=False
        )
        value = dataset.get("PatientID")
    except _damaged() as exc:
        raise ValueError(f"{path.name} is not a DICOM file: {exc}") from None
    text = str(value).strip() if value is not None else ""
    return text or None
