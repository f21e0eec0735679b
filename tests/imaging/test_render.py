"""The thumbnail renderer, on real files made by Pillow and pydicom in tmp_path."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageOps

from atoz_watcher.errors import ThumbnailError
from atoz_watcher.imaging.render import (
    MAX_PIXELS,
    NO_ADJUST,
    SIZE,
    Adjust,
    Renderer,
    extension,
    output_format,
    thumbnailable,
)
from tests.support.images import (
    BLUE,
    EDGE,
    GREEN,
    MIDDLE,
    RED,
    YELLOW,
    Colour,
    dicom_levels,
    framed,
    quadrants,
    write_dicom,
)

LANDSCAPE = (400, 250)
PORTRAIT = (250, 400)
RASTER = ("jpg", "jpeg", "tga", "bmp", "tif", "tiff", "gif", "ico", "png", "webp")
WRITTEN_AS = {
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "tga": "TGA",
    "bmp": "BMP",
    "tif": "TIFF",
    "tiff": "TIFF",
    "gif": "GIF",
    "ico": "ICO",
    "png": "PNG",
    "webp": "WEBP",
    "dcm": "PNG",
    "pdf": "PNG",
}
OPAQUE = {"JPEG", "BMP"}  # padding white; everything else transparent
LOSSY = {"jpg", "jpeg", "webp"}


# -- sources ----------------------------------------------------------------------------------


def exif_with(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` RGB and holds no pixels: a bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header (SOF0) is patched to say ``width`` x ``height``."""
    buffer = io.BytesIO()
    framed((64, 48)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    # FFC0, length (2), precision (1), then height and width.
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


# -- reading thumbnails --------------------------------------------------------------------------


def opened(path: Path) -> tuple[str, Image.Image]:
    """The format Pillow reads ``path`` as, and its pixels as RGBA."""
    with Image.open(path) as image:
        return str(image.format), image.convert("RGBA")


def content_box(thumbnail: Image.Image, fmt: str) -> tuple[int, int, int, int]:
    """The non-padding area: non-white where the padding is white, else alpha above 0."""
    if fmt in OPAQUE:
        white = Image.new("RGB", thumbnail.size, (255, 255, 255))
        distance = ImageChops.difference(thumbnail.convert("RGB"), white).convert("L")
        # JPEG ringing leaves near-white pixels in the padding next to the content.
        box = distance.point(lambda value: 255 if value > 40 else 0).getbbox()
    else:
        box = thumbnail.getchannel("A").getbbox()
    assert box is not None, "the thumbnail is all padding"
    return box


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def assert_fits(box: tuple[int, int, int, int], source: tuple[int, int]) -> None:
    """``box`` has the source's aspect ratio within one pixel and is centred on the canvas."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    scale = SIZE / max(source)
    assert abs(width - source[0] * scale) <= 1, (box, source)
    assert abs(height - source[1] * scale) <= 1, (box, source)
    assert abs(left - (SIZE - right)) <= 1, ("not centred", box)
    assert abs(top - (SIZE - bottom)) <= 1, ("not centred", box)


def quadrant_colours(thumbnail: Image.Image, fmt: str) -> tuple[Colour, ...]:
    """The colours at the centres of the four quadrants of the content: TL, TR, BL, BR."""
    left, top, right, bottom = content_box(thumbnail, fmt)
    found = []
    for fy in (0.25, 0.75):
        for fx in (0.25, 0.75):
            at = (left + int(fx * (right - left)), top + int(fy * (bottom - top)))
            found.append(thumbnail.getpixel(at)[:3])
    return tuple(found)


def near(colours: tuple[Colour, ...], expected: tuple[Colour, ...], tolerance: int) -> bool:
    return all(close(a, e, tolerance) for a, e in zip(colours, expected, strict=True))


def leftovers(folder: Path) -> list[str]:
    """Whatever sits in ``folder``/Thumbnails: no thumbnail and no temporary file, we hope."""
    thumbnails = folder / "Thumbnails"
    return sorted(p.name for p in thumbnails.iterdir()) if thumbnails.exists() else []


@pytest.fixture
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A patient folder."""
    path = tmp_path / "SmithJohn1"
    path.mkdir()
    return path


def thumbnail_of(
    renderer: Renderer, source: Path, adjust: Adjust = NO_ADJUST
) -> tuple[str, Image.Image]:
    """Write ``source``'s thumbnail where Open Dental looks for it; its format and pixels."""
    dest = source.parent / "Thumbnails" / source.name
    fmt = renderer.write(source, dest, adjust=adjust)
    written, pixels = opened(dest)
    assert written == fmt
    assert pixels.size == (SIZE, SIZE)
    assert leftovers(source.parent) == [source.name]
    return written, pixels


# -- the pure helpers ----------------------------------------------------------------------------


class TestNames:
    @pytest.mark.parametrize(
        ("name", "ext", "fmt", "gets_one"),
        [
            ("x.jpg", "jpg", "JPEG", True),
            ("X.JPEG", "jpeg", "JPEG", True),
            ("scan.Tif", "tif", "TIFF", True),
            ("a.b.tiff", "tiff", "TIFF", True),
            ("logo.gif", "gif", "GIF", True),
            ("x.bmp", "bmp", "BMP", True),
            ("x.tga", "tga", "TGA", True),
            ("x.ico", "ico", "ICO", True),
            ("x.png", "png", "PNG", True),
            ("x.webp", "webp", "WEBP", True),
            ("pano.dcm", "dcm", "PNG", True),
            ("letter.pdf", "pdf", "PNG", True),
            ("chart.wmf", "wmf", "PNG", False),
            ("notes.txt", "txt", "PNG", False),
            ("README", "", "PNG", False),
            ("trailing.", "", "PNG", False),
        ],
    )
    def test_name(self, name: str, ext: str, fmt: str, gets_one: bool) -> None:
        assert extension(name) == ext
        assert output_format(name) == fmt
        assert thumbnailable(name) is gets_one


# -- formats -------------------------------------------------------------------------------------


class TestFormats:
    @pytest.mark.parametrize("size", [LANDSCAPE, PORTRAIT], ids=["landscape", "portrait"])
    @pytest.mark.parametrize("ext", RASTER)
    def test_raster(
        self, renderer: Renderer, folder: Path, ext: str, size: tuple[int, int]
    ) -> None:
        source = folder / f"photo.{ext}"
        framed(size).save(source)
        with Image.open(source) as saved:
            shown = saved.size  # an .ico holds at most 256x256, aspect kept

        fmt, thumbnail = thumbnail_of(renderer, source)

        assert fmt == WRITTEN_AS[ext]
        assert_fits(content_box(thumbnail, fmt), shown)
        tolerance = 12 if ext in LOSSY else 4
        assert close(thumbnail.getpixel((50, 50)), (*MIDDLE, 255), tolerance)
        # Landscape pads above, portrait to the left: look at the first padding pixel.
        corner = thumbnail.getpixel((0, 0))
        if fmt in OPAQUE:
            assert corner == (255, 255, 255, 255)
        else:
            assert corner[3] == 0

    @pytest.mark.parametrize("ext", ["png", "tif"])
    @pytest.mark.parametrize("size", [LANDSCAPE, PORTRAIT], ids=["landscape", "portrait"])
    def test_sixteen_bit_grey(
        self, renderer: Renderer, folder: Path, ext: str, size: tuple[int, int]
    ) -> None:
        # A 12-bit radiograph in a 16-bit file: 0..4095, dark on the left, light on the right.
        width, height = size
        row = np.linspace(0, 4095, width).astype(np.uint16)
        source = folder / f"xray.{ext}"
        Image.fromarray(np.tile(row, (height, 1))).save(source)
        with Image.open(source) as saved:
            assert saved.mode.startswith("I;16")

        fmt, thumbnail = thumbnail_of(renderer, source)

        assert fmt == WRITTEN_AS[ext]
        left, top, right, bottom = content_box(thumbnail, fmt)
        assert_fits((left, top, right, bottom), size)
        middle = (top + bottom) // 2
        darkest = thumbnail.getpixel((left + 1, middle))
        lightest = thumbnail.getpixel((right - 2, middle))
        centre = thumbnail.getpixel((50, 50))
        assert max(darkest[:3]) < 30, darkest  # not lifted to grey
        assert min(lightest[:3]) > 225, lightest  # not left dark: scaled, not shifted
        assert close(centre[:3], (128, 128, 128), 16), centre

    def test_sixteen_bit_big_endian_tiff(self, renderer: Renderer, folder: Path) -> None:
        pixels = dicom_levels(LANDSCAPE, 1000, 3000).astype(">u2")
        source = folder / "xray.tif"
        Image.fromarray(pixels).save(source)
        with Image.open(source) as saved:
            assert saved.mode == "I;16B"

        fmt, thumbnail = thumbnail_of(renderer, source)

        assert_fits(content_box(thumbnail, fmt), LANDSCAPE)
        assert close(thumbnail.getpixel((50, 50)), (255, 255, 255, 255), 4)
        assert close(thumbnail.getpixel((2, 50)), (0, 0, 0, 255), 4)

    def test_multi_page_tiff_shows_the_first_page(self, renderer: Renderer, folder: Path) -> None:
        source = folder / "scan.tif"
        first = framed(LANDSCAPE)
        others = [framed(PORTRAIT, RED, GREEN), framed(LANDSCAPE, BLUE, YELLOW)]
        first.save(source, save_all=True, append_images=others)
        with Image.open(source) as saved:
            assert saved.n_frames == 3

        fmt, thumbnail = thumbnail_of(renderer, source)

        assert fmt == "TIFF"
        assert_fits(content_box(thumbnail, fmt), LANDSCAPE)
        assert close(thumbnail.getpixel((50, 50)), (*MIDDLE, 255), 4)
        assert close(thumbnail.getpixel((2, 50)), (*EDGE, 255), 4)

    @pytest.mark.parametrize("size", [LANDSCAPE, PORTRAIT], ids=["landscape", "portrait"])
    def test_pdf_first_page(self, renderer: Renderer, folder: Path, size: tuple[int, int]) -> None:
        source = folder / "letter.pdf"
        # At 72 dpi a pixel is a point: the page is 400 x 250 pt (or 250 x 400).
        framed(size).save(
            source, "PDF", resolution=72.0, save_all=True, append_images=[framed(size, RED, RED)]
        )

        fmt, thumbnail = thumbnail_of(renderer, source)

        assert fmt == "PNG"
        assert_fits(content_box(thumbnail, fmt), size)
        assert close(thumbnail.getpixel((50, 50)), (*MIDDLE, 255), 8)
        assert thumbnail.getpixel((0, 0))[3] == 0

    @pytest.mark.parametrize("size", [LANDSCAPE, PORTRAIT], ids=["landscape", "portrait"])
    def test_dicom(self, renderer: Renderer, folder: Path, size: tuple[int, int]) -> None:
        source = write_dicom(
            folder / "pano.dcm",
            dicom_levels(size, 0, 1000),
            WindowCenter=1000,
            WindowWidth=400,
        )

        fmt, thumbnail = thumbnail_of(renderer, source)

        assert fmt == "PNG"
        assert_fits(content_box(thumbnail, fmt), size)
        assert close(thumbnail.getpixel((50, 50)), (128, 128, 128, 255), 2)
        assert thumbnail.getpixel((0, 0))[3] == 0

    @pytest.mark.parametrize(
        ("photometric", "level", "grey"),
        [
            pytest.param("MONOCHROME2", 1000, 128, id="mono2-centre-mid-grey"),
            pytest.param("MONOCHROME2", 1200, 255, id="mono2-window-top-white"),
            pytest.param("MONOCHROME2", 2000, 255, id="mono2-above-window-white"),
            pytest.param("MONOCHROME2", 800, 0, id="mono2-window-bottom-black"),
            pytest.param("MONOCHROME2", 900, 64, id="mono2-quarter"),
            pytest.param("MONOCHROME1", 1000, 127, id="mono1-centre-mid-grey"),
            pytest.param("MONOCHROME1", 1200, 0, id="mono1-window-top-black"),
            pytest.param("MONOCHROME1", 800, 255, id="mono1-window-bottom-white"),
        ],
    )
    def test_dicom_window(
        self, renderer: Renderer, folder: Path, photometric: str, level: int, grey: int
    ) -> None:
        source = write_dicom(
            folder / "xray.dcm",
            dicom_levels(LANDSCAPE, level, level),
            photometric=photometric,
            WindowCenter=1000,
            WindowWidth=400,
        )

        _, thumbnail = thumbnail_of(renderer, source)

        assert close(thumbnail.getpixel((50, 50)), (grey, grey, grey, 255), 2)

    def test_dicom_window_is_in_rescaled_units(self, renderer: Renderer, folder: Path) -> None:
        # Stored 2024 is 2024 * 1 - 1024 = 1000 Hounsfield-like units: the window's centre.
        source = write_dicom(
            folder / "ct.dcm",
            dicom_levels(LANDSCAPE, 0, 2024),
            WindowCenter=1000,
            WindowWidth=400,
            RescaleSlope=1,
            RescaleIntercept=-1024,
        )

        _, thumbnail = thumbnail_of(renderer, source)

        assert close(thumbnail.getpixel((50, 50)), (128, 128, 128, 255), 2)

    def test_dicom_without_window_is_stretched(self, renderer: Renderer, folder: Path) -> None:
        source = write_dicom(folder / "xray.dcm", dicom_levels(LANDSCAPE, 100, 300))

        _, thumbnail = thumbnail_of(renderer, source)

        assert close(thumbnail.getpixel((50, 50)), (255, 255, 255, 255), 2)
        assert close(thumbnail.getpixel((2, 50)), (0, 0, 0, 255), 2)

    def test_large_jpeg(self, renderer: Renderer, folder: Path) -> None:
        size = (7300, 5500)  # 40 megapixels
        source = folder / "camera.jpg"
        framed(size).save(source, quality=85)

        fmt, thumbnail = thumbnail_of(renderer, source)

        assert fmt == "JPEG"
        assert_fits(content_box(thumbnail, fmt), size)
        assert close(thumbnail.getpixel((50, 50)), (*MIDDLE, 255), 12)

    def test_threads_share_one_renderer(self, renderer: Renderer, folder: Path) -> None:
        sources = []
        for number in range(12):
            colours = (EDGE, MIDDLE) if number % 2 else (RED, GREEN)
            source = folder / f"page{number}.{('jpg', 'pdf', 'png')[number % 3]}"
            framed(LANDSCAPE, *colours).save(source)
            sources.append((source, colours[1]))

        with ThreadPoolExecutor(4) as pool:
            thumbnails = list(pool.map(lambda item: renderer.render(item[0]), sources))

        for (_, middle), thumbnail in zip(sources, thumbnails, strict=True):
            assert close(thumbnail.getpixel((50, 50)), (*middle, 255), 12)

    def test_replaces_an_old_thumbnail(self, renderer: Renderer, folder: Path) -> None:
        source = folder / "photo.png"
        framed(LANDSCAPE).save(source)
        dest = folder / "Thumbnails" / source.name
        dest.parent.mkdir()
        dest.write_bytes(b"stale")

        renderer.write(source, dest)

        assert opened(dest)[0] == "PNG"
        assert leftovers(folder) == [source.name]


# -- EXIF orientation ----------------------------------------------------------------------------


class TestOrientation:
    def test_orientation_6_turns_a_landscape_photo_upright(
        self, renderer: Renderer, folder: Path
    ) -> None:
        # Stored 400x200 with a red marker in its top-left corner; orientation 6 means "turn
        # 90 degrees clockwise to show", which puts the marker in the top-right corner.
        stored = Image.new("RGB", (400, 200), BLUE)
        stored.paste(RED, (0, 0, 100, 100))
        source = folder / "phone.jpg"
        stored.save(source, exif=exif_with(6), quality=95)

        fmt, thumbnail = thumbnail_of(renderer, source)

        left, top, right, bottom = content_box(thumbnail, fmt)
        assert_fits((left, top, right, bottom), (200, 400))
        assert close(thumbnail.getpixel((right - 5, top + 5)), (*RED, 255), 16)
        assert close(thumbnail.getpixel((left + 5, top + 5)), (*BLUE, 255), 16)
        assert close(thumbnail.getpixel((right - 5, bottom - 5)), (*BLUE, 255), 16)

    @pytest.mark.parametrize("orientation", range(1, 9))
    @pytest.mark.parametrize("ext", ["jpg", "png", "webp", "tif"])
    def test_matches_pillows_exif_transpose(
        self, renderer: Renderer, folder: Path, orientation: int, ext: str
    ) -> None:
        stored = quadrants((400, 240))
        source = folder / f"photo.{ext}"
        stored.save(source, exif=exif_with(orientation))
        with Image.open(source) as saved:
            expected = ImageOps.exif_transpose(saved)

        fmt, thumbnail = thumbnail_of(renderer, source)

        left, top, right, bottom = content_box(thumbnail, fmt)
        assert_fits((left, top, right, bottom), expected.size)
        tolerance = 24 if ext in LOSSY else 4
        for fx, fy in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]:
            shown = expected.getpixel((int(fx * expected.width), int(fy * expected.height)))
            at = (left + int(fx * (right - left)), top + int(fy * (bottom - top)))
            assert close(thumbnail.getpixel(at), (*shown, 255), tolerance), (fx, fy)

    @pytest.mark.parametrize("orientation", range(1, 9))
    @pytest.mark.parametrize("ext", ["jpg", "png", "tif"])
    def test_crop_is_in_the_files_pixels(
        self, renderer: Renderer, folder: Path, orientation: int, ext: str
    ) -> None:
        # Pillow turns a TIFF upright while loading it; the crop must follow it there.
        stored = quadrants((800, 480))
        source = folder / f"photo.{ext}"
        stored.save(source, exif=exif_with(orientation))
        box = (200, 0, 400, 480)  # x 200..600 in the file: all four quadrants, 400x480
        expected = stored.crop((200, 0, 600, 480))
        transpose = {
            2: Image.Transpose.FLIP_LEFT_RIGHT,
            3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270,
            7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90,
        }
        if orientation in transpose:
            expected = expected.transpose(transpose[orientation])

        fmt, thumbnail = thumbnail_of(renderer, source, Adjust(crop=box))

        assert_fits(content_box(thumbnail, fmt), expected.size)
        colours = tuple(
            expected.getpixel((int(fx * expected.width), int(fy * expected.height)))
            for fy in (0.25, 0.75)
            for fx in (0.25, 0.75)
        )
        assert near(quadrant_colours(thumbnail, fmt), colours, 24 if ext in LOSSY else 4)


# -- Open Dental's image settings -----------------------------------------------------------------


class TestAdjust:
    @pytest.mark.parametrize(
        ("adjust", "shown", "colours"),
        [
            pytest.param(NO_ADJUST, (400, 240), (RED, GREEN, BLUE, YELLOW), id="none"),
            pytest.param(
                Adjust(flip=True), (400, 240), (GREEN, RED, YELLOW, BLUE), id="flip-left-right"
            ),
            pytest.param(
                Adjust(degrees=90), (240, 400), (BLUE, RED, YELLOW, GREEN), id="90-clockwise"
            ),
            pytest.param(Adjust(degrees=180), (400, 240), (YELLOW, BLUE, GREEN, RED), id="180"),
            pytest.param(Adjust(degrees=270), (240, 400), (GREEN, YELLOW, RED, BLUE), id="270"),
            pytest.param(Adjust(degrees=-90), (240, 400), (GREEN, YELLOW, RED, BLUE), id="-90"),
            pytest.param(
                Adjust(flip=True, degrees=90),
                (240, 400),
                (YELLOW, GREEN, BLUE, RED),
                id="flip-then-turn",
            ),
        ],
    )
    @pytest.mark.parametrize("ext", ["png", "jpg"])
    def test_flip_and_turn(
        self,
        *,
        renderer: Renderer,
        folder: Path,
        ext: str,
        adjust: Adjust,
        shown: tuple[int, int],
        colours: tuple[Colour, ...],
    ) -> None:
        source = folder / f"photo.{ext}"
        quadrants((400, 240)).save(source)

        fmt, thumbnail = thumbnail_of(renderer, source, adjust)

        assert_fits(content_box(thumbnail, fmt), shown)
        assert near(quadrant_colours(thumbnail, fmt), colours, 24 if ext in LOSSY else 4)

    @pytest.mark.parametrize(
        ("crop", "shown", "colour"),
        [
            pytest.param((0, 0, 800, 480), (800, 480), RED, id="top-left"),
            pytest.param((800, 0, 800, 480), (800, 480), GREEN, id="top-right"),
            pytest.param((0, 480, 300, 480), (300, 480), BLUE, id="bottom-left-portrait"),
            pytest.param((1000, 600, 400, 100), (400, 100), YELLOW, id="inside-bottom-right"),
            pytest.param((1500, 900, 500, 500), (100, 60), YELLOW, id="clipped-to-the-image"),
        ],
    )
    @pytest.mark.parametrize("ext", ["png", "jpg"])
    def test_crop(
        self,
        *,
        renderer: Renderer,
        folder: Path,
        ext: str,
        crop: tuple[int, int, int, int],
        shown: tuple[int, int],
        colour: Colour,
    ) -> None:
        # Big enough that the JPEG is decoded at reduced size: the crop must be scaled with it.
        source = folder / f"photo.{ext}"
        quadrants((1600, 960)).save(source)

        fmt, thumbnail = thumbnail_of(renderer, source, Adjust(crop=crop))

        assert_fits(content_box(thumbnail, fmt), shown)
        tolerance = 24 if ext in LOSSY else 4
        assert near(quadrant_colours(thumbnail, fmt), (colour,) * 4, tolerance)

    @pytest.mark.parametrize(
        "crop",
        [(0, 0, 0, 0), (10, 10, 0, 50), (10, 10, 50, 0), (5000, 5000, 10, 10), (-50, -50, 10, 10)],
    )
    def test_empty_crop_is_ignored(
        self, renderer: Renderer, folder: Path, crop: tuple[int, int, int, int]
    ) -> None:
        source = folder / "photo.png"
        quadrants((400, 240)).save(source)

        fmt, thumbnail = thumbnail_of(renderer, source, Adjust(crop=crop))

        assert_fits(content_box(thumbnail, fmt), (400, 240))
        assert near(quadrant_colours(thumbnail, fmt), (RED, GREEN, BLUE, YELLOW), 4)

    def test_crop_then_turn(self, renderer: Renderer, folder: Path) -> None:
        # The crop is in the file's pixels: the left half, turned, becomes a landscape strip.
        source = folder / "photo.png"
        quadrants((400, 240)).save(source)

        fmt, thumbnail = thumbnail_of(renderer, source, Adjust(crop=(0, 0, 200, 240), degrees=90))

        assert_fits(content_box(thumbnail, fmt), (240, 200))
        assert near(quadrant_colours(thumbnail, fmt), (BLUE, RED, BLUE, RED), 4)

    @pytest.mark.parametrize(
        ("level", "grey"),
        [(50, 0), (100, 0), (125, 64), (150, 128), (200, 255), (250, 255)],
    )
    @pytest.mark.parametrize("ext", ["png", "jpg"])
    def test_window(
        self, renderer: Renderer, folder: Path, ext: str, level: int, grey: int
    ) -> None:
        source = folder / f"xray.{ext}"
        Image.new("L", LANDSCAPE, level).save(source)

        _, thumbnail = thumbnail_of(renderer, source, Adjust(window=(100, 200)))

        assert close(thumbnail.getpixel((50, 50)), (grey, grey, grey, 255), 3)

    def test_window_of_colour(self, renderer: Renderer, folder: Path) -> None:
        source = folder / "photo.png"
        Image.new("RGB", LANDSCAPE, (100, 150, 200)).save(source)

        _, thumbnail = thumbnail_of(renderer, source, Adjust(window=(100, 200)))

        assert close(thumbnail.getpixel((50, 50)), (0, 128, 255, 255), 2)

    def test_window_without_high_is_ignored(self, renderer: Renderer, folder: Path) -> None:
        source = folder / "xray.png"
        Image.new("L", LANDSCAPE, 150).save(source)

        _, thumbnail = thumbnail_of(renderer, source, Adjust(window=(100, 0)))

        assert close(thumbnail.getpixel((50, 50)), (150, 150, 150, 255), 1)

    def test_dicom_keeps_its_own_window(self, renderer: Renderer, folder: Path) -> None:
        # The document's WindowingMin/Max hold the file's window in its own units (800..1200);
        # applied again to display levels it would turn the mid-grey centre white.
        source = write_dicom(
            folder / "xray.dcm",
            dicom_levels(LANDSCAPE, 0, 1000),
            WindowCenter=1000,
            WindowWidth=400,
        )

        _, thumbnail = thumbnail_of(renderer, source, Adjust(window=(800, 1200), degrees=90))

        assert_fits(content_box(thumbnail, "PNG"), PORTRAIT)
        assert close(thumbnail.getpixel((50, 50)), (128, 128, 128, 255), 2)


# -- files that get no thumbnail -----------------------------------------------------------------


def truncated_jpeg(path: Path) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((400, 250), 60).convert("RGB").save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2])


def damaged_png(path: Path) -> None:
    """A valid header and a damaged compressed stream."""
    buffer = io.BytesIO()
    framed(LANDSCAPE).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    idat = data.index(b"IDAT") + 4
    data[idat : idat + 60] = b"\xff" * 60
    path.write_bytes(bytes(data))


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(4).bytes(2000))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def bomb_png(width: int, height: int) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(png_header(width, height))


def bomb_jpeg(width: int, height: int) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(jpeg_declaring(width, height))


def pdf_text(path: Path) -> None:
    path.write_bytes(b"%PDF-1.4\nthis is not really a PDF\n%%EOF\n")


def dicom_cut(path: Path) -> None:
    """A real file cut off in the middle of its pixel data."""
    write_dicom(path, dicom_levels(LANDSCAPE, 0, 1000))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def dicom_random(path: Path) -> None:
    path.write_bytes(np.random.default_rng(5).bytes(300))


def dicom_without_pixels(path: Path) -> None:
    write_dicom(path, np.zeros((2, 2), dtype=np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\xe0\x7f\x10\x00")])  # cut off the PixelData element


def dicom_bomb(path: Path) -> None:
    write_dicom(path, np.zeros((2, 2), dtype=np.uint16), Rows=10_000, Columns=9_000)


def text_file(path: Path) -> None:
    path.write_text("not an image")


class TestBadFiles:
    @pytest.mark.parametrize(
        ("name", "make", "reason"),
        [
            pytest.param("cut.jpg", truncated_jpeg, "truncated", id="truncated-jpeg"),
            pytest.param("broken.png", damaged_png, "unreadable image", id="damaged-png"),
            pytest.param("noise.jpg", random_bytes, "not an image", id="random-bytes"),
            pytest.param("empty.jpg", empty, "not an image", id="zero-bytes-jpg"),
            pytest.param("empty.png", empty, "not an image", id="zero-bytes-png"),
            pytest.param("empty.pdf", empty, "unreadable PDF", id="zero-bytes-pdf"),
            pytest.param("empty.dcm", empty, "not a DICOM file", id="zero-bytes-dcm"),
            pytest.param("bad.pdf", pdf_text, "unreadable PDF", id="corrupt-pdf"),
            pytest.param("bad.dcm", dicom_random, "not a DICOM file", id="corrupt-dcm"),
            pytest.param("cut.dcm", dicom_cut, "pixel data", id="truncated-dcm"),
            pytest.param("nopix.dcm", dicom_without_pixels, "no PixelData", id="dcm-no-pixels"),
            pytest.param("bomb.dcm", dicom_bomb, "decompression bomb", id="dcm-bomb"),
            # 400 MP: Pillow refuses it in Image.open, over twice its own limit.
            pytest.param(
                "bomb.png", bomb_png(20_000, 20_000), "decompression bomb", id="png-400MP"
            ),
            # 90.25 MP: Pillow only warns; we refuse.
            pytest.param("bomb2.png", bomb_png(9_500, 9_500), "decompression bomb", id="png-90MP"),
            # 81 MP: over our limit, under Pillow's: our own refusal, before any decoding.
            pytest.param("big.png", bomb_png(9_000, 9_000), "over 80,000,000", id="png-81MP"),
            pytest.param(
                "bomb.jpg", bomb_jpeg(20_000, 20_000), "decompression bomb", id="jpeg-400MP"
            ),
            pytest.param("big.jpg", bomb_jpeg(9_000, 9_000), "over 80,000,000", id="jpeg-81MP"),
            pytest.param("notes.xyz", text_file, "no thumbnail for .xyz files", id="unknown"),
            pytest.param("README", text_file, "without an extension", id="no-extension"),
        ],
    )
    def test_no_thumbnail(
        self,
        renderer: Renderer,
        folder: Path,
        name: str,
        make: Callable[[Path], None],
        reason: str,
    ) -> None:
        source = folder / name
        make(source)

        with pytest.raises(ThumbnailError) as caught:
            renderer.write(source, folder / "Thumbnails" / name)

        assert caught.value.path == source
        assert reason in caught.value.reason
        assert leftovers(folder) == []

    def test_max_pixels_is_the_renderers(self, folder: Path) -> None:
        source = folder / "photo.png"
        framed((200, 150)).save(source)

        with pytest.raises(ThumbnailError) as caught:
            Renderer(max_pixels=200 * 150 - 1).write(source, folder / "Thumbnails" / "photo.png")

        assert "decompression bomb: 200x150 is over 29,999 pixels" in caught.value.reason
        assert leftovers(folder) == []
        Renderer(max_pixels=200 * 150).write(source, folder / "Thumbnails" / "photo.png")
        assert leftovers(folder) == ["photo.png"]

    def test_default_limit_is_above_40_megapixels(self) -> None:
        assert 7300 * 5500 < MAX_PIXELS < 89_478_485  # under Pillow's warning threshold

    def test_failed_write_leaves_no_temporary_file(self, renderer: Renderer, folder: Path) -> None:
        source = folder / "photo.png"
        framed(LANDSCAPE).save(source)
        dest = folder / "Thumbnails" / "photo.png"
        dest.mkdir(parents=True)  # a folder where the thumbnail should go: the rename fails

        with pytest.raises(OSError, match="directory"):
            renderer.write(source, dest)

        assert leftovers(folder) == ["photo.png"]
        assert dest.is_dir()
        assert not any(dest.iterdir())
