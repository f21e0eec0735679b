"""Image and DICOM files for the tests, made by Pillow and pydicom: one factory of each kind."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

Colour = tuple[int, int, int]

EDGE: Colour = (30, 90, 160)  # fills the source; far from white so JPEG padding shows
MIDDLE: Colour = (220, 120, 30)  # the middle half of the source, so the centre pixel is known
# The four quadrants, to follow where a corner ends up.
RED: Colour = (220, 30, 30)
GREEN: Colour = (30, 200, 30)
BLUE: Colour = (30, 30, 220)
YELLOW: Colour = (230, 220, 30)

DIGITAL_XRAY = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


def png(size: tuple[int, int] = (300, 200), colour: Colour = (200, 30, 30)) -> bytes:
    """A plain ``size`` PNG of one colour."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def jpeg(
    size: tuple[int, int] = (64, 48), colour: Colour = (10, 200, 10), *, quality: int = 75
) -> bytes:
    """A plain ``size`` JPEG of one colour (75 is Pillow's own default quality)."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=quality)
    return out.getvalue()


def framed(size: tuple[int, int], edge: Colour = EDGE, middle: Colour = MIDDLE) -> Image.Image:
    """``edge`` everywhere, ``middle`` over the middle half in each direction."""
    image = Image.new("RGB", size, edge)
    width, height = size
    image.paste(middle, (width // 4, height // 4, width - width // 4, height - height // 4))
    return image


def quadrants(size: tuple[int, int]) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, yellow bottom-right."""
    image = Image.new("RGB", size)
    width, height = size
    image.paste(RED, (0, 0, width // 2, height // 2))
    image.paste(GREEN, (width // 2, 0, width, height // 2))
    image.paste(BLUE, (0, height // 2, width // 2, height))
    image.paste(YELLOW, (width // 2, height // 2, width, height))
    return image


def write_dicom(
    path: Path,
    pixels: np.ndarray[Any, Any] | None = None,
    *,
    photometric: str = "MONOCHROME2",
    **elements: Any,
) -> Path:
    """A real Part 10 file (preamble, DICM, file meta): a digital X-ray of 16-bit unsigned
    samples, 12 bits stored, with ``elements`` set last. With ``pixels`` it holds them; without,
    it declares 2 x 2 and holds no pixel data (enough for the windowing and the headers)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DIGITAL_XRAY
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = DIGITAL_XRAY
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientName = "Smith^John"
    if pixels is None:
        ds.Rows = 2
        ds.Columns = 2
    else:
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if pixels is not None:
        ds.PixelData = pixels.astype("<u2").tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def dicom_levels(size: tuple[int, int], edge: int, middle: int) -> np.ndarray[Any, Any]:
    """Rows x columns: ``edge`` everywhere, ``middle`` over the middle half."""
    width, height = size
    pixels = np.full((height, width), edge, dtype=np.uint16)
    pixels[height // 4 : height - height // 4, width // 4 : width - width // 4] = middle
    return pixels
