"""Benchmark: thumbnail rendering against a naive Pillow baseline and pyvips, in one run.

Run from the project root::

    .venv/bin/python bench/thumbs.py [--seconds 1.0] [--repeat 3]

It makes its own images in a temporary directory (removed at the end): a 4000x3000 colour JPEG
at quality 90 with EXIF orientation 6, a 2000x1500 grayscale JPEG radiograph, a 3000x2000 PNG
and a 2000x1500 16-bit TIFF (12 bits used), each gradients plus noise so that they compress
like real pictures, and a 7300x5500 (40 MP) JPEG for the memory goal. For each image it prints
images/s and MB/s of input for:

(a) ours: ``Renderer().write(source, dest)``;
(b) naive Pillow: ``Image.open``, ``ImageOps.exif_transpose`` (which decodes the whole image),
    ``thumbnail((100, 100))``, save;
(c) pyvips: ``pyvips.Image.thumbnail(path, 100)`` then ``write_to_file``, in its own venv
    (``bench/.venv-pyvips``, made once with ``pyvips[binary]`` from PyPI) and its own process,
    with ``VIPS_CONCURRENCY=1`` (one core, like (a) and (b)) and libvips' operation cache off.

Every figure is the best of ``--repeat`` rounds of about ``--seconds`` each (the machine is
shared). Goals: ours at least 2.5x naive on the large JPEG; at least 1.0x pyvips on every JPEG;
at least 1.8x from using every core (the same images through one thread, then through a
ThreadPoolExecutor of os.cpu_count() threads); peak extra memory for the 40 MP JPEG under 10 MB
(VmHWM in a fresh process, after the imports and a warm-up render of a tiny image, and again
after rendering the 40 MP JPEG).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from harness import failure, run_script, step, verdict
from PIL import Image, ImageOps

from atoz_watcher.imaging.render import Renderer

NAIVE_GOAL = 2.5  # ours / naive, large JPEG
PYVIPS_GOAL = 1.0  # ours / pyvips, every JPEG
CORES_GOAL = 1.8  # all threads / one thread
MEMORY_GOAL_MB = 10.0
PYVIPS_VENV = Path(__file__).resolve().parent / ".venv-pyvips"
BIG = (7300, 5500)  # 40 megapixels

# Runs in the pyvips venv: argv[1] is JSON {"files": [...], "out": dir, "seconds", "repeat"};
# prints JSON {file: best seconds per image}.
PYVIPS_SCRIPT = r"""
import json, sys, time
from pathlib import Path
import pyvips
pyvips.cache_set_max(0)  # the same file again must be decoded again
job = json.loads(sys.argv[1])
best = {}
for name in job["files"]:
    dest = str(Path(job["out"]) / ("vips-" + Path(name).name))
    pyvips.Image.thumbnail(name, 100).write_to_file(dest)  # warm-up
    rounds = []
    for _ in range(job["repeat"]):
        count, start = 0, time.perf_counter()
        while count == 0 or time.perf_counter() - start < job["seconds"]:
            pyvips.Image.thumbnail(name, 100).write_to_file(dest)
            count += 1
        rounds.append((time.perf_counter() - start) / count)
    best[name] = min(rounds)
print(json.dumps({"version": pyvips.version(0) * 100 + pyvips.version(1), "best": best}))
"""

# Runs in a fresh interpreter of this venv: the peak extra memory of one render.
MEMORY_SCRIPT = r"""
import sys
from pathlib import Path
from PIL import Image, ImageOps

def hwm_kb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM in /proc/self/status")

how, source, tiny, out = sys.argv[1:5]
if how == "ours":
    from atoz_watcher.imaging.render import Renderer
    renderer = Renderer()
    render = lambda path, dest: renderer.write(Path(path), Path(dest))
else:
    def render(path, dest):
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode.startswith("I;16"):
                image = image.convert("I")
            image.thumbnail((100, 100))
            image.save(dest)
render(tiny, out + "/warm-" + Path(tiny).name)
before = hwm_kb()
render(source, out + "/big-" + Path(source).name)
print(hwm_kb() - before)
"""


@dataclass(frozen=True, slots=True)
class Sample:
    label: str
    path: Path

    @property
    def megabytes(self) -> float:
        return self.path.stat().st_size / 1e6


# -- the images ---------------------------------------------------------------------------------


def picture(size: tuple[int, int], channels: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth gradients and blobs plus sensor-like noise, 0..1, rows x columns (x channels)."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x /= width
    y /= height
    layers = []
    for channel in range(channels):
        phase = channel * 1.7
        smooth = 0.5 + 0.25 * np.sin(6 * x + phase) * np.cos(4 * y - phase) + 0.2 * (x - y)
        layers.append(smooth + rng.normal(0, 0.06, (height, width)).astype(np.float32))
    stacked = np.stack(layers, axis=-1) if channels > 1 else layers[0]
    return np.clip(stacked, 0, 1)


def make_images(folder: Path) -> tuple[list[Sample], Path, Path]:
    """The four benched images, the 40 MP JPEG and a tiny warm-up JPEG."""
    rng = np.random.default_rng(2024)
    exif = Image.Exif()
    exif[0x0112] = 6
    large = folder / "large.jpg"
    colour = Image.fromarray((picture((4000, 3000), 3, rng) * 255).astype(np.uint8))
    colour.save(large, quality=90, exif=exif)
    radiograph = folder / "radiograph.jpg"
    grey = Image.fromarray((picture((2000, 1500), 1, rng) * 255).astype(np.uint8))
    grey.save(radiograph, quality=90)
    png = folder / "photo.png"
    colour.resize((3000, 2000), Image.Resampling.BILINEAR).save(png)
    tiff = folder / "xray16.tif"
    Image.fromarray((picture((2000, 1500), 1, rng) * 4095).astype(np.uint16)).save(tiff)
    big = folder / "camera40mp.jpg"
    colour.resize(BIG, Image.Resampling.BILINEAR).save(big, quality=90)
    tiny = folder / "tiny.jpg"
    colour.resize((64, 48)).save(tiny)
    samples = [
        Sample("JPEG 4000x3000 colour, EXIF 6", large),
        Sample("JPEG 2000x1500 grey radiograph", radiograph),
        Sample("JPEG 7300x5500 (40 MP)", big),
        Sample("PNG 3000x2000 colour", png),
        Sample("TIFF 2000x1500 16-bit grey", tiff),
    ]
    return samples, big, tiny


# -- timing -------------------------------------------------------------------------------------


def best_seconds(action: Callable[[], object], seconds: float, repeat: int) -> float:
    """The best, over ``repeat`` rounds of about ``seconds`` each, of the time per call."""
    action()  # warm-up: imports, page cache
    rounds = []
    for _ in range(repeat):
        count, start = 0, time.perf_counter()
        while count == 0 or time.perf_counter() - start < seconds:
            action()
            count += 1
        rounds.append((time.perf_counter() - start) / count)
    return min(rounds)


def naive(source: Path, dest: Path) -> None:
    with Image.open(source) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode.startswith("I;16"):
            image = image.convert("I")  # Pillow cannot reduce I;16: naive code fails outright
        image.thumbnail((100, 100))
        image.save(dest)


def ensure_pyvips(out: Callable[[str], None]) -> Path:
    python = PYVIPS_VENV / "bin" / "python"
    if not python.exists():
        out(f"  making {PYVIPS_VENV} with pyvips[binary] (once) ...\n")
        # Our interpreter and pip, fixed arguments.
        subprocess.run([sys.executable, "-m", "venv", str(PYVIPS_VENV)], check=True)  # noqa: S603
        install = [str(python), "-m", "pip", "install", "-q", "pyvips[binary]"]
        subprocess.run(install, check=True)  # noqa: S603
    return python


def time_pyvips(
    python: Path, samples: Sequence[Sample], out_dir: Path, seconds: float, repeat: int
) -> tuple[str, dict[str, float]]:
    job = {
        "files": [str(s.path) for s in samples],
        "out": str(out_dir),
        "seconds": seconds,
        "repeat": repeat,
    }
    env = {**os.environ, "VIPS_CONCURRENCY": "1"}
    done = subprocess.run(  # noqa: S603 - the bench's own venv and script
        [str(python), "-c", PYVIPS_SCRIPT, json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise failure(f"the pyvips run failed:\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    version = report["version"]
    return f"libvips {version // 100}.{version % 100}", report["best"]


def time_cores(
    renderer: Renderer, sample: Sample, out_dir: Path, repeat: int
) -> tuple[float, float]:
    """Images/s through os.cpu_count() threads over images/s through one, same images; and
    the CPU seconds this process used per second in the threaded runs (how many cores it got:
    below the thread count, either the GIL or another process held them)."""
    jobs = [(sample.path, out_dir / f"core{n}.jpg") for n in range(16)]

    def one_thread() -> None:
        for source, dest in jobs:
            renderer.write(source, dest)

    def every_core() -> None:
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(lambda job: renderer.write(*job), jobs))

    single, pooled, busy = [], [], []
    every_core()  # warm-up
    for _ in range(repeat):  # interleaved, so that a neighbour's load hits both alike
        start = time.perf_counter()
        one_thread()
        single.append(time.perf_counter() - start)
        cpu, start = time.process_time(), time.perf_counter()
        every_core()
        pooled.append(time.perf_counter() - start)
        busy.append((time.process_time() - cpu) / pooled[-1])
    return min(single) / min(pooled), max(busy)


def peak_memory_mb(how: str, big: Path, tiny: Path, out_dir: Path) -> float:
    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", MEMORY_SCRIPT, how, str(big), str(tiny), str(out_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise failure(f"the memory run ({how}) failed:\n{done.stderr[-2000:]}")
    return int(done.stdout.strip()) / 1024


# -- the run ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=1.0, help="per round (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, best kept (default 3)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stdout
    print(f"bench/thumbs.py on {os.cpu_count()} cores; best of {args.repeat} x {args.seconds} s")
    with tempfile.TemporaryDirectory(prefix="atoz-thumbs-") as base:
        folder = Path(base)
        dest = folder / "Thumbnails"
        dest.mkdir()
        with step(out, "making the images"):
            samples, big, tiny = make_images(folder)
        python = ensure_pyvips(out.write)
        with step(out, "pyvips (own venv, own process)"):
            vips_version, vips = time_pyvips(python, samples, dest, args.seconds, args.repeat)
        renderer = Renderer()
        ours: dict[str, float] = {}
        plain: dict[str, float] = {}
        with step(out, "ours and naive Pillow"):
            for sample in samples:
                target = dest / sample.path.name
                ours[sample.label] = best_seconds(
                    lambda s=sample, t=target: renderer.write(s.path, t),
                    args.seconds,
                    args.repeat,
                )
                plain[sample.label] = best_seconds(
                    lambda s=sample, t=target: naive(s.path, t), args.seconds, args.repeat
                )
        large = samples[0]
        with step(out, f"one thread vs {os.cpu_count()} threads (16 x the large JPEG)"):
            load = os.getloadavg()[0]
            cores, busy = time_cores(renderer, large, dest, args.repeat)
        with step(out, "peak memory, 40 MP JPEG (fresh processes)"):
            memory = peak_memory_mb("ours", big, tiny, dest)
            memory_naive = peak_memory_mb("naive", big, tiny, dest)

        print()
        print(f"{'image':34} {'MB':>6} | {'ours img/s':>10} {'MB/s':>6} | "
              f"{'naive img/s':>11} {'MB/s':>6} | {'pyvips img/s':>12} {'MB/s':>6} | "
              f"{'/naive':>6} {'/pyvips':>7}")  # fmt: skip
        for sample in samples:
            mine, theirs, vip = ours[sample.label], plain[sample.label], vips[str(sample.path)]
            mb = sample.megabytes
            print(
                f"{sample.label:34} {mb:6.1f} | {1 / mine:10.1f} {mb / mine:6.1f} | "
                f"{1 / theirs:11.1f} {mb / theirs:6.1f} | {1 / vip:12.1f} {mb / vip:6.1f} | "
                f"{theirs / mine:5.1f}x {vip / mine:6.2f}x"
            )
        print(f"(pyvips {vips_version}, VIPS_CONCURRENCY=1, cache off)")
        print()
        over_naive = plain[large.label] / ours[large.label]
        jpegs = [s for s in samples if s.path.suffix == ".jpg"]
        worst_vips = min(vips[str(s.path)] / ours[s.label] for s in jpegs)
        goals = [
            (f"large JPEG vs naive Pillow >= {NAIVE_GOAL}x", f"{over_naive:.1f}x",
             over_naive >= NAIVE_GOAL),
            (f"every JPEG vs pyvips >= {PYVIPS_GOAL}x", f"worst {worst_vips:.2f}x",
             worst_vips >= PYVIPS_GOAL),
            (f"{os.cpu_count()} threads vs 1 >= {CORES_GOAL}x",
             f"{cores:.2f}x (got {busy:.2f} cores; load average {load:.2f} before)",
             cores >= CORES_GOAL),
            (f"peak extra memory, 40 MP JPEG < {MEMORY_GOAL_MB:.0f} MB",
             f"{memory:.1f} MB (naive {memory_naive:.1f} MB)", memory < MEMORY_GOAL_MB),
        ]  # fmt: skip
        for goal, figure, ok in goals:
            print(f"{verdict(ok)}  {goal:44} {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, "bench/thumbs.py"))
