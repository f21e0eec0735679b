"""Large images made on the spot, and their thumbnails rendered in a fresh process whose peak
memory is read from /proc (VmHWM): what a render really costs, not what we estimate.

Run as ``python -m tests.support.memory_probe BUDGET_MB THREADS FILE...``: renders every FILE
(``THREADS`` at a time, one renderer and one budget) and prints one JSON line: the resident
set before rendering, the peak, and each file's outcome ("made" or the refusal's reason).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


def status_kb(field: str, pid: str = "self") -> int:
    """A field of /proc/<pid>/status in KB: VmRSS now, VmHWM the peak."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: str = "self") -> bool:
    """Start VmHWM again from the current RSS (Linux 4.0+: write 5 to clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# -- images -----------------------------------------------------------------------------------


def _gradient(width: int, height: int, top: int) -> np.ndarray[Any, Any]:
    """Rows of a smooth ramp: cheap to compress, so the test makes its files fast."""
    ramp = np.linspace(0, top, width, dtype=np.float64)
    return np.broadcast_to(ramp, (height, width))


def png16(path: Path, width: int, height: int) -> Path:
    Image.fromarray(_gradient(width, height, 65535).astype(np.uint16)).save(path, compress_level=1)
    return path


def png_rgba(path: Path, width: int, height: int) -> Path:
    grey = _gradient(width, height, 255).astype(np.uint8)
    Image.fromarray(np.dstack([grey, grey, grey, grey])).save(path, compress_level=1)
    return path


def tiff_pages(path: Path, width: int, height: int, pages: int) -> Path:
    frames = [Image.new("L", (width, height), 40 + page) for page in range(pages)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return path


def dicom(path: Path, width: int, height: int, *, frames: int = 1, bits: int = 8) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset  # noqa: PLC0415
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid  # noqa: PLC0415

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = height, width
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    dtype = np.uint8 if bits == 8 else np.uint16
    frame = _gradient(width, height, 2**bits - 1).astype(dtype).tobytes()
    ds.PixelData = frame * frames
    ds.save_as(path, enforce_file_format=True)
    return path


# -- rendering in a fresh process -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendered:
    idle_mb: float  # resident before the first render (Python, Pillow, numpy, pydicom loaded)
    peak_mb: float  # the process's peak resident set
    outcomes: list[str]  # "made", or why not
    budget_peak_mb: float  # the most the budget let through at once

    @property
    def above_idle_mb(self) -> float:
        return self.peak_mb - self.idle_mb


def render_in_process(files: list[Path], *, budget_mb: int, threads: int = 1) -> Rendered:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.memory_probe", str(budget_mb), str(threads)]
        + [str(f) for f in files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return Rendered(**json.loads(done.stdout.strip().splitlines()[-1]))


def _main(argv: list[str]) -> None:
    import pydicom.pixels.utils  # noqa: F401, PLC0415 - loaded before the idle reading

    from atoz_watcher.errors import ThumbnailError  # noqa: PLC0415
    from atoz_watcher.imaging.render import Renderer  # noqa: PLC0415
    from atoz_watcher.system.membudget import MemoryBudget  # noqa: PLC0415

    budget_mb, threads, files = int(argv[0]), int(argv[1]), [Path(a) for a in argv[2:]]
    renderer = Renderer(budget=MemoryBudget(budget_mb * MB))

    def render(path: Path) -> str:
        try:
            renderer.write(path, path.with_name(f"thumb-{path.name}"))
        except ThumbnailError as exc:
            return exc.reason
        return "made"

    # A small render first: every code path loaded and warmed before the idle reading.
    warm = Path(files[0]).with_name("warm.png")
    Image.new("RGB", (64, 64)).save(warm)
    render(warm)
    idle = status_kb("VmRSS")
    reset_peak()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(render, files))
    print(  # noqa: T201 - the parent reads this line
        json.dumps(
            {
                "idle_mb": idle / 1024,
                "peak_mb": status_kb("VmHWM") / 1024,
                "outcomes": outcomes,
                "budget_peak_mb": renderer.budget.peak / MB,
            }
        )
    )


if __name__ == "__main__":
    _main(sys.argv[1:])
