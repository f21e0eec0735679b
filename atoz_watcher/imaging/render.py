"""Render a document's 100x100 thumbnail, or fit its image into any box (mount composites).

One of the two modules that import Pillow (the other is ``composite``, which draws mounts).

Speed comes from never decoding more pixels than the box needs: a JPEG is decoded at
1/2, 1/4 or 1/8 size by the decoder itself (``draft``), everything else is box-reduced by an
integer factor before the final resampling, and EXIF orientation is applied to the small image,
after shrinking. Pillow releases the GIL while it decodes and resamples, so one renderer may be
called from several threads at once (PDF rendering, which is not thread-safe, takes a lock).
"""

from __future__ import annotations

import io
import math
import os
import struct
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from PIL import Image, UnidentifiedImageError

from atoz_watcher.config.sections import ThumbnailSettings
from atoz_watcher.errors import ThumbnailError
from atoz_watcher.imaging.dicom import decoding_bytes as dicom_decoding_bytes
from atoz_watcher.imaging.dicom import read_pixels
from atoz_watcher.rules.naming import plain
from atoz_watcher.system.membudget import MB, MemoryBudget, OverBudgetError
from atoz_watcher.system.memory import release_free_memory

SIZE: Final = 100
# Larger images are refused as decompression bombs. Kept under Pillow's own warning threshold
# (89.5 MP) so our refusal, with its clear reason, comes first; 80 MP is twice a 40 MP camera.
MAX_PIXELS: Final = 80_000_000
# Decode at least this many times the thumbnail's size before the last (Lanczos) resampling.
_OVERSAMPLE: Final = 2
# What all rendering threads of a renderer may hold in decoded pixels at once.
MEMORY_BUDGET: Final = 1024 * MB
# After a decode this large, freed memory is handed back to the system at once.
_TRIM_BYTES: Final = 16 * MB
# Bytes per pixel as Pillow holds an image of each mode (every mode not listed: 4).
_PIXEL_BYTES: Final = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Modes _scaled_region converts at full size before reducing, and the bytes per pixel added.
_CONVERTED_BYTES: Final = {"1": 4, "P": 4, "PA": 4, "I;16": 4, "I;16L": 4, "I;16B": 4, "I;16N": 4}

# Open Dental's thumbnailed extensions (emf, wmf, exif and tig are Windows or legacy formats
# Pillow cannot read; they get no thumbnail), plus webp.
_RASTER: Final = frozenset(
    {"jpg", "jpeg", "tga", "bmp", "tif", "tiff", "gif", "ico", "png", "webp"}
)
# Beyond Open Dental: rendered, then written as PNG content under the document's own name.
_DICOM: Final = frozenset({"dcm"})
_PDF: Final = frozenset({"pdf"})

# What a thumbnail is written as, by the file's extension; anything else is PNG.
_FORMAT_BY_EXTENSION: Final = {
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "bmp": "BMP",
    "gif": "GIF",
    "png": "PNG",
    "tif": "TIFF",
    "tiff": "TIFF",
    "tga": "TGA",
    "ico": "ICO",
    "webp": "WEBP",
}
# Formats whose padding is white: JPEG has no alpha, and BMP readers mostly ignore it.
_OPAQUE: Final = frozenset({"JPEG", "BMP"})
_WHITE: Final = (255, 255, 255, 255)
_CLEAR: Final = (255, 255, 255, 0)

_EXIF_ORIENTATION: Final = 0x0112
_TRANSPOSE: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIDEWAYS: Final = frozenset({5, 6, 7, 8})
# JPEG quality of a preview: small files, text on a scan still legible.
_PREVIEW_QUALITY: Final = 80

# pdfium keeps per-process state and is not thread-safe, so every Renderer shares this lock.
_PDFIUM_LOCK: Final = threading.Lock()

# How Pillow and the codecs report a file they cannot use.
_UNREADABLE: Final = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    Image.DecompressionBombError,
    # Pillow warns, in Image.open, before our own size check can refuse; where warnings are
    # errors (the tests) that warning arrives as an exception.
    Image.DecompressionBombWarning,
)


@dataclass(frozen=True, slots=True)
class Adjust:
    """Open Dental's per-document image settings, applied before scaling.

    ``crop`` is (x, y, width, height) in the file's pixels, ignored while width or height is 0;
    ``flip`` mirrors left-right, then the image turns ``degrees`` clockwise; ``window`` maps
    grey levels ``[low, high]`` to black..white, ignored while high is 0.
    """

    crop: tuple[int, int, int, int] = (0, 0, 0, 0)
    flip: bool = False
    degrees: float = 0.0
    window: tuple[int, int] = (0, 0)


NO_ADJUST: Final = Adjust()


def thumbnail_renderer(
    settings: ThumbnailSettings, *, budget: MemoryBudget | None = None
) -> Renderer:
    """The renderer ``[thumbnails]`` describes: its pixel limit and its memory budget (a new
    one, or ``budget`` to share another renderer's)."""
    return Renderer(
        max_pixels=settings.max_pixels,
        budget=budget or MemoryBudget(settings.memory_budget_mb * MB),
    )


def extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def thumbnailable(name: str) -> bool:
    """Does a document of this name get a thumbnail?"""
    ext = extension(name)
    return ext in _RASTER or ext in _DICOM or ext in _PDF


def output_format(name: str) -> str:
    """The format a thumbnail is written in: the file's own where Pillow writes it, else PNG."""
    return _FORMAT_BY_EXTENSION.get(extension(name), "PNG")


class Renderer:
    """Renders thumbnails; one instance may serve many threads at once."""

    def __init__(
        self,
        *,
        size: int = SIZE,
        max_pixels: int = MAX_PIXELS,
        budget: MemoryBudget | None = None,
    ) -> None:
        self._size = size
        self._max_pixels = max_pixels
        # Shared by every thread this renderer serves: their decoded pixels, together.
        self.budget = budget or MemoryBudget(MEMORY_BUDGET)

    def render(self, source: Path, *, adjust: Adjust = NO_ADJUST) -> Image.Image:
        """The thumbnail of ``source`` as an RGBA image of size x size, padding transparent."""
        return self.fit(source, box=(self._size, self._size), adjust=adjust)

    def fit(
        self,
        source: Path | bytes | BinaryIO,
        *,
        box: tuple[int, int],
        adjust: Adjust = NO_ADJUST,
        name: str = "",
    ) -> Image.Image:
        """``source`` fitted into ``box`` (width, height), aspect kept, after ``adjust``.

        An RGBA image of exactly ``box``, the picture centred and the padding transparent.
        ``source`` is a file, or a file's content or an open file with ``name`` its file name:
        the extension decides how it is read (raster, DICOM or PDF). Raises ThumbnailError.
        """
        if box[0] < 1 or box[1] < 1:
            raise ValueError(f"a box of {box[0]}x{box[1]} holds no picture")
        label = source if isinstance(source, Path) else Path(name or "<bytes>")
        ext = extension(label.name)
        try:
            if ext in _DICOM:
                picture = self._dicom(source, label)
                # A DICOM file is shown through its own window; the document's WindowingMin/Max
                # hold that same window in the file's units, not display levels.
                adjust = Adjust(crop=adjust.crop, flip=adjust.flip, degrees=adjust.degrees)
            elif ext in _PDF:
                picture = self._pdf(source, label, box)
            elif ext in _RASTER:
                picture = self._raster(source, label, adjust, box)
                # The crop was applied while decoding, in the file's own coordinates.
                adjust = Adjust(flip=adjust.flip, degrees=adjust.degrees, window=adjust.window)
            else:
                kind = f".{ext} files" if ext else "files without an extension"
                return self._refuse(label, f"no thumbnail for {kind}")
            return _finish(picture, adjust, box)
        except ThumbnailError:
            raise
        except OverBudgetError as exc:
            raise ThumbnailError(label, str(exc)) from None
        except MemoryError:
            raise ThumbnailError(label, "not enough memory to decode it") from None
        except _UNREADABLE as exc:
            raise ThumbnailError(label, _reason(exc)) from None

    @staticmethod
    def _refuse(source: Path, reason: str) -> Image.Image:
        raise ThumbnailError(source, reason)

    def encode(
        self, source: Path | BinaryIO, *, name: str, adjust: Adjust = NO_ADJUST
    ) -> tuple[str, bytes]:
        """The thumbnail of ``source`` (a file, or an open file named ``name``) encoded as
        the file type of ``name`` where Pillow writes it, else PNG: (format, bytes)."""
        thumbnail = self.fit(source, box=(self._size, self._size), adjust=adjust, name=name)
        fmt = output_format(name)
        if fmt in _OPAQUE:
            thumbnail = _flatten(thumbnail)
        options: dict[str, object] = {"sizes": [thumbnail.size]} if fmt == "ICO" else {}
        buffer = io.BytesIO()
        thumbnail.save(buffer, format=fmt, **options)
        return fmt, buffer.getvalue()

    def jpeg(
        self,
        source: Path | bytes | BinaryIO,
        *,
        name: str,
        box: tuple[int, int],
        adjust: Adjust = NO_ADJUST,
    ) -> bytes:
        """``source`` (a file, or the content or an open file named ``name``) fitted into ``box``
        on white, as a JPEG: a preview at any size (a PDF's first page, a TIFF's first frame).
        Raises ThumbnailError."""
        picture = _flatten(self.fit(source, box=box, adjust=adjust, name=name))
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=_PREVIEW_QUALITY)
        return buffer.getvalue()

    def write(self, source: Path, dest: Path, *, adjust: Adjust = NO_ADJUST) -> str:
        """Render and write ``dest`` atomically (a temporary file, then a rename), outside the
        A-to-Z tree (in it, ``thumbnailing.carry_out`` writes through ``contained``).

        Returns the format written. Nothing is left behind when rendering or writing fails.
        """
        fmt, data = self.encode(source, name=source.name, adjust=adjust)
        dest.parent.mkdir(exist_ok=True)
        temporary = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            temporary.write_bytes(data)
            temporary.replace(dest)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return fmt

    # -- sources ---------------------------------------------------------------------------------

    def _raster(
        self, source: Path | bytes | BinaryIO, label: Path, adjust: Adjust, box: tuple[int, int]
    ) -> Image.Image:
        opened = io.BytesIO(source) if isinstance(source, bytes) else source
        with ExitStack() as held:  # the budget, given back once the decoded pixels are freed
            with Image.open(opened) as image:
                width, height = image.size
                if width * height > self._max_pixels:
                    raise ThumbnailError(
                        label,
                        f"decompression bomb: {width}x{height} is over {self._max_pixels:,} pixels",
                    )
                if image.format != "JPEG":  # reading the EXIF of a PNG may decode it
                    held.enter_context(self._reserve(_decoding_bytes(image)))
                shrunk, orientation = self._decode(image, adjust, box, held)
            del image
            picture = _to_display_mode(shrunk)
            del shrunk
        if orientation in _TRANSPOSE:
            picture = picture.transpose(_TRANSPOSE[orientation])
        return picture

    def _decode(
        self, image: Image.Image, adjust: Adjust, box: tuple[int, int], held: ExitStack
    ) -> tuple[Image.Image, int]:
        """The region ``adjust`` crops, decoded and box-reduced near the size ``box`` needs,
        and the EXIF orientation still to apply."""
        width, height = image.size
        orientation = _orientation(image)
        # Pillow (10 and later) turns a TIFF upright itself while loading it, and reports
        # the upright size from the start; the crop is still in the file's own pixels.
        upright_on_load = image.format == "TIFF" and orientation in _TRANSPOSE
        stored = (
            (height, width) if upright_on_load and orientation in _SIDEWAYS else (width, height)
        )
        crop = _crop_box(adjust.crop, stored)
        region = (crop[2] - crop[0], crop[3] - crop[1]) if crop else stored
        # The size the region ends up as, then that size in the file's own orientation.
        fit = _fit(_turned(region, orientation, adjust.degrees), box)
        wanted = _unturned(fit, orientation, adjust.degrees)
        scale = min(1.0, max(wanted[0] / region[0], wanted[1] / region[1]) * _OVERSAMPLE)
        if image.format == "JPEG":
            _draft(image, scale)  # the decoder's own reduction: reserve what it decodes
            held.enter_context(self._reserve(_decoding_bytes(image)))
        image.load()
        if upright_on_load:
            crop = _oriented_box(crop, stored, orientation) if crop else None
            stored, orientation = image.size, 1
        return _scaled_region(image, crop, stored, scale), orientation

    @contextmanager
    def _reserve(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` of the budget; after a large decode, hand the freed pages back to
        the system before the next job may take the budget (glibc keeps them otherwise: four
        threads rendering one after the other peaked at 2.4x one render's memory)."""
        with self.budget.reserve(nbytes):
            yield
            if nbytes >= _TRIM_BYTES:
                release_free_memory()

    def _dicom(self, source: Path | bytes | BinaryIO, label: Path) -> Image.Image:
        if isinstance(source, Path):
            return self._dicom_file(source)
        if not isinstance(source, bytes):
            source = source.read()
        # The DICOM reader takes a file (it names it in its errors): bytes get a temporary one
        # under the document's own name.
        with tempfile.TemporaryDirectory(prefix="atoz-dicom-") as directory:
            path = Path(directory) / (label.name if plain(label.name) else "document.dcm")
            path.write_bytes(source)
            return self._dicom_file(path)

    def _dicom_file(self, path: Path) -> Image.Image:
        # The header alone says what decoding one frame takes; the budget is held meanwhile.
        with self._reserve(dicom_decoding_bytes(path, max_pixels=self._max_pixels)):
            return Image.fromarray(read_pixels(path, max_pixels=self._max_pixels))

    def _pdf(
        self, source: Path | bytes | BinaryIO, label: Path, box: tuple[int, int]
    ) -> Image.Image:
        import pypdfium2  # noqa: PLC0415 - only a practice that drops PDFs pays for pdfium

        # pdfium is not thread-safe and its state is the process's: one PDF at a time here.
        with _PDFIUM_LOCK:
            try:
                document = pypdfium2.PdfDocument(source)
            except pypdfium2.PdfiumError as exc:  # a RuntimeError: not in _UNREADABLE
                raise ThumbnailError(label, f"unreadable PDF: {exc}") from None
            try:
                if len(document) == 0:
                    raise ThumbnailError(label, "the PDF has no pages")
                page = document[0]
                width, height = page.get_size()
                if width <= 0 or height <= 0:
                    raise ThumbnailError(label, "the PDF's first page has no size")
                scale = min(box[0] / width, box[1] / height) * _OVERSAMPLE
                bitmap = page.render(scale=scale, fill_color=_WHITE)
                picture: Image.Image = bitmap.to_pil().convert("RGB")
                # Closed here, under the lock, not later by the garbage collector on any thread.
                bitmap.close()
                page.close()
            except pypdfium2.PdfiumError as exc:
                raise ThumbnailError(label, f"unreadable PDF: {exc}") from None
            finally:
                document.close()
        return picture


# -- helpers ---------------------------------------------------------------------------------------


def _finish(picture: Image.Image, adjust: Adjust, box: tuple[int, int]) -> Image.Image:
    """Apply what is left of ``adjust``, fit into ``box`` and centre on a transparent canvas."""
    if adjust.crop != NO_ADJUST.crop:
        crop = _crop_box(adjust.crop, picture.size)
        if crop:
            picture = picture.crop(crop)
    if adjust.window[1] > 0:
        picture = _window(picture, adjust.window)
    if adjust.flip:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    picture = picture.convert("RGBA") if picture.mode != "RGBA" else picture
    if adjust.degrees % 360:
        picture = picture.rotate(
            -adjust.degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=_CLEAR
        )
    fit = _fit(picture.size, box)
    if picture.size != fit:
        picture = picture.resize(fit, Image.Resampling.LANCZOS, reducing_gap=2.0)
    canvas = Image.new("RGBA", box, _CLEAR)
    canvas.paste(picture, ((box[0] - fit[0]) // 2, (box[1] - fit[1]) // 2))
    return canvas


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"decompression bomb: {exc}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read (unknown format, empty or damaged)"
    return f"unreadable image: {text}"


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except OSError:
        # Not the EXIF block (Pillow turns its read errors into warnings) but the pixels: a PNG
        # is decoded to look for an eXIf chunk after them. Swallowed, the failed decode would
        # leave a black image that the next load() would not retry.
        raise
    except _UNREADABLE:
        return 1  # a damaged EXIF block: show the pixels as stored
    return value if isinstance(value, int) else 1


def _crop_box(
    crop: tuple[int, int, int, int], size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """The crop rectangle clipped to the image, or None for no (or an empty) crop."""
    x, y, w, h = crop
    if w <= 0 or h <= 0:
        return None
    left, top = max(0, x), max(0, y)
    right, bottom = min(size[0], x + w), min(size[1], y + h)
    if right <= left or bottom <= top:
        return None
    return (left, top, right, bottom)


def _oriented_box(
    box: tuple[int, int, int, int], size: tuple[int, int], orientation: int
) -> tuple[int, int, int, int]:
    """``box`` (left, top, right, bottom) in an image of ``size`` as stored, moved to where the
    EXIF ``orientation`` puts it."""
    left, top, right, bottom = box
    width, height = size
    moved = {
        2: (width - right, top, width - left, bottom),
        3: (width - right, height - bottom, width - left, height - top),
        4: (left, height - bottom, right, height - top),
        5: (top, left, bottom, right),
        6: (height - bottom, left, height - top, right),
        7: (height - bottom, width - right, height - top, width - left),
        8: (top, width - right, bottom, width - left),
    }
    return moved.get(orientation, box)


def _turned(size: tuple[int, int], orientation: int, degrees: float) -> tuple[int, int]:
    """The size after EXIF orientation and a turn of ``degrees`` (bounding box)."""
    width, height = (size[1], size[0]) if orientation in _SIDEWAYS else size
    angle = math.radians(degrees % 360)
    cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
    return (
        max(1, round(width * cos + height * sin)),
        max(1, round(width * sin + height * cos)),
    )


def _unturned(fit: tuple[int, int], orientation: int, degrees: float) -> tuple[int, int]:
    """The size, in the file's own orientation, that becomes ``fit`` once turned."""
    turn = degrees % 180
    sideways = (orientation in _SIDEWAYS) != (45 <= turn < 135)  # noqa: PLR2004 - degrees
    return (fit[1], fit[0]) if sideways else fit


def _fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """``size`` scaled to the largest that fits in ``box``, aspect kept (never below 1 pixel)."""
    width, height = size
    box_width, box_height = box
    # Compared in integers: which side limits the fit must not depend on rounding.
    if width * box_height >= height * box_width:
        return box_width, max(1, round(height * box_width / width))
    return max(1, round(width * box_height / height)), box_height


def _draft(image: Image.Image, scale: float) -> None:
    """Let the JPEG decoder skip detail: decode at 1/2, 1/4 or 1/8 where that is still enough."""
    width, height = image.size
    mode = image.mode if image.mode in {"L", "RGB"} else None
    if image.mode == "YCbCr":
        mode = "RGB"
    image.draft(mode, (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))


def _scaled_region(
    image: Image.Image,
    crop: tuple[int, int, int, int] | None,
    original: tuple[int, int],
    scale: float,
) -> Image.Image:
    """Crop (in the file's coordinates) and box-reduce the decoded image close to ``scale``."""
    if image.mode in {"I;16", "I;16L", "I;16B", "I;16N"}:
        image = image.convert("I")
    elif image.mode in {"P", "PA", "1"}:
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    drafted = image.size[0] / original[0]  # what the JPEG decoder already did
    if crop:
        left, top, right, bottom = (round(edge * drafted) for edge in crop)
        image = image.crop((left, top, max(right, left + 1), max(bottom, top + 1)))
    factor = int(drafted / scale) if scale > 0 else 1
    if factor > 1:
        image = image.reduce(min(factor, *image.size))
    return image


def _decoding_bytes(image: Image.Image) -> int:
    """What decoding ``image`` (its current size: a JPEG's after ``draft``) and reducing it
    hold at most: the decoded pixels, the full-size copy in a wider mode that _scaled_region
    makes of some modes, and the one reduce makes of an image with alpha (measured: an RGBA
    PNG peaks at twice its decoded size). Pillow decodes one frame (a TIFF's first page)."""
    width, height = image.size
    mode = image.mode
    per_pixel = _PIXEL_BYTES.get(mode, 4) + _CONVERTED_BYTES.get(mode, 0)
    if _has_alpha(image):
        per_pixel += 4  # Image.reduce works on a premultiplied full-size copy of RGBA
    if image.format == "TIFF":
        per_pixel += _PIXEL_BYTES.get(mode, 4)  # the upright copy of an EXIF-oriented TIFF
    return width * height * per_pixel


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in {"PA", "RGBA", "LA"} or "transparency" in image.info


def _to_display_mode(image: Image.Image) -> Image.Image:
    """8-bit grey, RGB or RGBA. Deep greys are stretched from their darkest to their
    lightest value, so a 12-bit radiograph in a 16-bit file is neither black nor clipped."""
    if image.mode in {"I", "F"}:
        extrema = image.getextrema()
        low, high = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]  # one band
        gain = 255.0 / (high - low) if high > low else 0.0
        image = image.point(lambda value: value * gain - low * gain)
        return image.convert("L")
    if image.mode in {"L", "RGB", "RGBA", "LA"}:
        return image
    return image.convert("RGBA" if _has_alpha(image) else "RGB")


def _window(picture: Image.Image, window: tuple[int, int]) -> Image.Image:
    """Open Dental's windowing: grey ``low`` becomes black, ``high`` white."""
    low, high = window
    if high <= low:
        return picture
    gain = 255.0 / (high - low)
    table = [min(255, max(0, round((level - low) * gain))) for level in range(256)]
    if picture.mode == "L":
        return picture.point(table)
    if picture.mode == "RGB":
        return picture.point(table * 3)
    if picture.mode == "RGBA":
        return picture.point(table * 3 + list(range(256)))
    return picture


def _flatten(picture: Image.Image) -> Image.Image:
    """RGBA on white, for formats without transparency."""
    canvas = Image.new("RGB", picture.size, _WHITE[:3])
    canvas.paste(picture, mask=picture.getchannel("A"))
    return canvas
