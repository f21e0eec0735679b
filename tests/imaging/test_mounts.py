"""Mount composites, on real files and on both databases that have mount tables.

Pictures are checked by sampling pixels: each source has a different colour in each quadrant,
so where a corner ends up shows the rotation and the flip. Samples are 5x5 means away from
edges, compared with a tolerance, so JPEG noise cannot make a test flaky.

The golden image ``tests/golden/mount_4_items.png`` is the composite of ``four_item_scene``,
decoded from its JPEG. After a deliberate change to the drawing, regenerate it with

    ATOZ_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/imaging/test_mounts.py -k golden

look at it, and commit it with the change.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from structlog.testing import capture_logs

from atoz_watcher.errors import AtozError, ThumbnailError
from atoz_watcher.imaging.mounts import (
    NUMBER_GREY,
    OUTLINE,
    MountComposer,
    MountNotFoundError,
    MountTooLargeError,
    argb,
)
from atoz_watcher.imaging.render import Adjust, Renderer
from atoz_watcher.storage import InDatabase, LocalAtoZ, Storage
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
from tests.support.worlds import World

GOLDEN = Path(__file__).parent / "golden" / "mount_4_items.png"
REGENERATE = os.environ.get("ATOZ_REGENERATE_GOLDEN") == "1"

# Mount backgrounds as Open Dental stores them: ARGB in a signed 32-bit int.
NAVY_ARGB = 0xFF182838 - (1 << 32)
NAVY: Colour = (0x18, 0x28, 0x38)
BLACK_ARGB = -16777216
WHITE_ARGB = -1
MAGENTA: Colour = (200, 40, 200)
GREY: Colour = NUMBER_GREY[:3]
OUTLINE_GREY: Colour = OUTLINE[:3]
TOLERANCE = 24

# Landscape 80 x 40: in a 100 x 100 item it is 100 x 50, 25 px of background above and below.
WIDE = (80, 40)
ITEM = 100


def signed(value: int) -> int:
    """An unsigned ARGB as the signed int Open Dental stores."""
    return value - (1 << 32) if value >= 1 << 31 else value


# -- the scene -------------------------------------------------------------------------------------


@dataclass
class Scene:
    world: World
    storage: Storage
    pat_num: int
    folder: str = "SmithAnn1"

    @property
    def in_database(self) -> bool:
        return self.storage.kind == "InDatabase"

    def composer(self) -> MountComposer:
        return MountComposer(self.world.engine, self.storage, self.world.root, Renderer())

    def mount(self, width: int, height: int, color_back: int = NAVY_ARGB, **columns: Any) -> int:
        return self.world._insert(
            "mount",
            {
                "PatNum": self.pat_num,
                "Width": width,
                "Height": height,
                "ColorBack": color_back,
                "Description": "FMX",
                "Note": "",
                **columns,
            },
        )

    def item(
        self,
        mount_num: int,
        order: int,
        at: tuple[int, int],
        size: tuple[int, int] = (ITEM, ITEM),
        **columns: Any,
    ) -> int:
        return self.world._insert(
            "mountitem",
            {
                "MountNum": mount_num,
                "ItemOrder": order,
                "Xpos": at[0],
                "Ypos": at[1],
                "Width": size[0],
                "Height": size[1],
                "TextShowing": "",
                **columns,
            },
        )

    def document(
        self, item: int, name: str, image: Image.Image | bytes | None, **columns: Any
    ) -> int:
        """A document on ``item``; its file (or RawBase64) holds ``image``; None: no file."""
        data = b""
        if isinstance(image, Image.Image):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            data = buffer.getvalue()
        elif image is not None:
            data = image
        if self.in_database:
            columns.setdefault("RawBase64", base64.b64encode(data).decode("ascii"))
        elif image is not None:
            (self.world.folder(self.folder) / name).write_bytes(data)
        return self.world.add_document(self.pat_num, name, 0, MountItemNum=item, **columns)


def make_scene(world: World, storage: str) -> Scene:
    pat_num = world.add_patient("Smith", "Ann", "SmithAnn1")
    backend: Storage = InDatabase() if storage == "InDatabase" else LocalAtoZ(world.root)
    return Scene(world=world, storage=backend, pat_num=pat_num)


@pytest.fixture(params=["LocalAtoZ", "InDatabase"])
def scene(request: pytest.FixtureRequest, bare_world: World) -> Scene:
    """A patient on SQLite and MariaDB (the worlds with mount tables), for each storage."""
    return make_scene(bare_world, request.param)


@pytest.fixture
def local_scene(bare_world: World) -> Scene:
    return make_scene(bare_world, "LocalAtoZ")


# Item corners in the four-item scene (a 230 x 230 mount, 100 x 100 items, 10 px apart).
PLAIN_AT = (10, 10)
ROTATED_AT = (120, 10)
FLIPPED_AT = (10, 120)
EMPTY_AT = (120, 120)


def four_item_scene(scene: Scene) -> int:
    """Plain, rotated 90 degrees, flipped and empty items; returns the MountNum.

    Around them: an older document on the plain item (the newest DocNum must win), and a
    hidden item (ItemOrder -1) with a white picture under the empty one (it must not show).
    """
    mount = scene.mount(230, 230)
    plain = scene.item(mount, 1, PLAIN_AT)
    rotated = scene.item(mount, 2, ROTATED_AT)
    flipped = scene.item(mount, 3, FLIPPED_AT)
    scene.item(mount, 4, EMPTY_AT)
    hidden = scene.item(mount, -1, EMPTY_AT)
    scene.document(plain, "older.png", Image.new("RGB", WIDE, MAGENTA))
    scene.document(plain, "plain.png", quadrants(WIDE))
    scene.document(rotated, "rotated.png", quadrants(WIDE), DegreesRotated=90)
    scene.document(flipped, "flipped.png", quadrants(WIDE), IsFlipped=1)
    scene.document(hidden, "hidden.png", Image.new("RGB", WIDE, (255, 255, 255)))
    return mount


# -- sampling --------------------------------------------------------------------------------------


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return image.convert("RGB")


def sample(image: Image.Image, x: int, y: int, radius: int = 2) -> Colour:
    """The mean colour of the (2 radius + 1) square around (x, y)."""
    pixels = np.asarray(image.crop((x - radius, y - radius, x + radius + 1, y + radius + 1)))
    mean = pixels.reshape(-1, 3).mean(axis=0)
    return (round(mean[0]), round(mean[1]), round(mean[2]))


def pixel(image: Image.Image, at: tuple[int, int]) -> Colour:
    """One pixel's colour, alpha left out."""
    value = image.getpixel(at)
    assert isinstance(value, tuple)
    return (int(value[0]), int(value[1]), int(value[2]))


def near(actual: Colour, expected: Colour, tolerance: int = TOLERANCE) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def assert_colour(image: Image.Image, at: tuple[int, int], expected: Colour) -> None:
    actual = sample(image, *at)
    assert near(actual, expected), f"{at}: {actual} is not near {expected}"


def assert_wide_picture(
    image: Image.Image, corner: tuple[int, int], colours: tuple[Colour, Colour, Colour, Colour]
) -> None:
    """A landscape picture fitted to 100 x 50 in the item at ``corner``, background above and
    below; ``colours`` top-left, top-right, bottom-left, bottom-right."""
    x, y = corner
    for (dx, dy), colour in zip([(25, 37), (75, 37), (25, 62), (75, 62)], colours, strict=True):
        assert_colour(image, (x + dx, y + dy), colour)
    assert_colour(image, (x + 50, y + 12), NAVY)
    assert_colour(image, (x + 50, y + 88), NAVY)


def assert_tall_picture(
    image: Image.Image, corner: tuple[int, int], colours: tuple[Colour, Colour, Colour, Colour]
) -> None:
    """A portrait picture fitted to 50 x 100, background left and right."""
    x, y = corner
    for (dx, dy), colour in zip([(37, 25), (62, 25), (37, 75), (62, 75)], colours, strict=True):
        assert_colour(image, (x + dx, y + dy), colour)
    assert_colour(image, (x + 12, y + 50), NAVY)
    assert_colour(image, (x + 88, y + 50), NAVY)


def grey_pixels(image: Image.Image, corner: tuple[int, int], size: int = ITEM) -> np.ndarray:
    """(row, column) of the text-grey pixels inside an item, its outline left out."""
    x, y = corner
    inner = np.asarray(image.crop((x + 3, y + 3, x + size - 3, y + size - 3))).astype(int)
    spread = inner.max(axis=2) - inner.min(axis=2)
    level = inner.mean(axis=2)
    return np.argwhere((spread < 16) & (abs(level - GREY[0]) < 40))


def assert_outlined(image: Image.Image, corner: tuple[int, int], size: int = ITEM) -> None:
    """A 1 px grey outline, background just outside it (the items sit on the background)."""
    x, y = corner
    middle = size // 2
    # Where the four-item pictures leave background inside the item: the middle of each side
    # lies in padding for one orientation or the other, so test both spots each side.
    for edge in [(x, y + 5), (x + middle, y), (x + size - 1, y + 5), (x + middle, y + size - 1)]:
        assert near(pixel(image, edge), OUTLINE_GREY, 32), f"outline at {edge}"
    assert near(pixel(image, (x - 3, y + 5)), NAVY)


# -- the tests -------------------------------------------------------------------------------------


class TestArgb:
    @pytest.mark.parametrize(
        ("stored", "rgba"),
        [
            (-1, (255, 255, 255, 255)),  # Color.White
            (-16777216, (0, 0, 0, 255)),  # Color.Black
            (0, (0, 0, 0, 0)),  # Color.Empty / a row that never set it
            (-65536, (255, 0, 0, 255)),  # Color.Red
            (-16744448, (0, 128, 0, 255)),  # Color.Green
            (-8355712, (128, 128, 128, 255)),  # Color.Gray
            (signed(0xFF182838), (0x18, 0x28, 0x38, 255)),
            (0x7F00FF00, (0, 255, 0, 127)),  # positive: alpha under 128
            (signed(0x80FFFFFF), (255, 255, 255, 128)),
            (16777215, (255, 255, 255, 0)),  # Color.Transparent
        ],
    )
    def test_signed_argb(self, stored: int, rgba: tuple[int, int, int, int]) -> None:
        assert argb(stored) == rgba

    @pytest.mark.parametrize(
        ("stored", "shown"),
        [
            (-1, (255, 255, 255)),
            (BLACK_ARGB, (0, 0, 0)),
            (-65536, (255, 0, 0)),
            (NAVY_ARGB, NAVY),
            # JPEG has no alpha: a transparent or translucent background is shown over white.
            (0, (255, 255, 255)),
            (signed(0x80000000), (127, 127, 127)),
        ],
    )
    def test_background_fills_the_canvas(
        self, local_scene: Scene, stored: int, shown: Colour
    ) -> None:
        mount = local_scene.mount(64, 48, color_back=stored)

        image = decode(local_scene.composer().jpeg(mount))

        assert image.size == (64, 48)
        for at in [(3, 3), (32, 24), (60, 44)]:
            assert_colour(image, at, shown)


class TestComposite:
    def test_four_items(self, scene: Scene) -> None:
        mount = four_item_scene(scene)

        image = decode(scene.composer().jpeg(mount))

        assert image.size == (230, 230)
        assert_wide_picture(image, PLAIN_AT, (RED, GREEN, BLUE, YELLOW))
        # Turned 90 degrees clockwise: the bottom-left corner is now the top-left one.
        assert_tall_picture(image, ROTATED_AT, (BLUE, RED, YELLOW, GREEN))
        # Mirrored left-right.
        assert_wide_picture(image, FLIPPED_AT, (GREEN, RED, YELLOW, BLUE))
        for corner in (PLAIN_AT, ROTATED_AT, FLIPPED_AT, EMPTY_AT):
            assert_outlined(image, corner)
        # Between the items: the background.
        assert_colour(image, (115, 115), NAVY)
        assert_colour(image, (225, 60), NAVY)

    def test_empty_item_shows_its_number_in_grey(self, scene: Scene) -> None:
        mount = four_item_scene(scene)

        image = decode(scene.composer().jpeg(mount))

        grey = grey_pixels(image, EMPTY_AT)
        assert len(grey) > 30
        rows, columns = grey[:, 0] + 3, grey[:, 1] + 3
        centre = ((rows.min() + rows.max()) / 2, (columns.min() + columns.max()) / 2)
        assert abs(centre[0] - 50) < 6, centre
        assert abs(centre[1] - 50) < 6, centre
        # Around the number: the background, not the hidden item's white picture.
        x, y = EMPTY_AT
        for at in [(x + 10, y + 10), (x + 90, y + 10), (x + 10, y + 90), (x + 90, y + 90)]:
            assert_colour(image, at, NAVY)
        item = np.asarray(image.crop((x + 1, y + 1, x + 99, y + 99))).astype(int)
        assert item.min(axis=2).max() < 200

    def test_pictured_items_show_no_number(self, local_scene: Scene) -> None:
        mount = four_item_scene(local_scene)

        image = decode(local_scene.composer().jpeg(mount))

        assert len(grey_pixels(image, PLAIN_AT)) < 5

    def test_crop_applies_before_fitting(self, scene: Scene) -> None:
        mount = scene.mount(120, 120)
        item = scene.item(mount, 1, (10, 10))
        # The top-right quadrant (40 x 20) alone: green, fitted to 100 x 50.
        scene.document(item, "cropped.png", quadrants(WIDE), CropX=40, CropY=0, CropW=40, CropH=20)

        image = decode(scene.composer().jpeg(mount))

        assert_wide_picture(image, (10, 10), (GREEN, GREEN, GREEN, GREEN))

    def test_text_item_shows_its_text_instead_of_anything_else(self, scene: Scene) -> None:
        mount = scene.mount(
            220, 120, color_back=NAVY_ARGB, ColorFore=BLACK_ARGB, ColorTextBack=WHITE_ARGB
        )
        text = scene.item(mount, 1, (10, 10), TextShowing="UR", FontSize=40)
        scene.document(text, "under-the-text.png", quadrants(WIDE))

        image = decode(scene.composer().jpeg(mount))

        # ColorTextBack fills the item, ColorFore writes the text in its middle.
        assert_colour(image, (15, 15), (255, 255, 255))
        assert_colour(image, (100, 100), (255, 255, 255))
        middle = np.asarray(image.crop((30, 40, 90, 80))).astype(int)
        assert (middle.max(axis=2) < 60).sum() > 40
        assert near(pixel(image, (10, 50)), OUTLINE_GREY, 32)
        assert_colour(image, (115, 60), NAVY)

    def test_text_without_colours_is_grey_on_the_background(self, local_scene: Scene) -> None:
        mount = local_scene.mount(120, 120, color_back=BLACK_ARGB)
        local_scene.item(mount, 1, (10, 10), TextShowing="LL\nmolars")

        image = decode(local_scene.composer().jpeg(mount))

        assert len(grey_pixels(image, (10, 10))) > 20
        assert_colour(image, (15, 15), (0, 0, 0))

    def test_items_are_clipped_to_the_canvas(self, local_scene: Scene) -> None:
        mount = local_scene.mount(150, 150)
        corner = local_scene.item(mount, 1, (100, 100))
        left = local_scene.item(mount, 2, (-50, 0))
        outside = local_scene.item(mount, 3, (400, 400))
        for item in (corner, left, outside):
            local_scene.document(item, f"q{item}.png", quadrants(WIDE))

        image = decode(local_scene.composer().jpeg(mount))

        assert image.size == (150, 150)
        # The corner item's top-left quadrant, the rest falls off the canvas.
        assert_colour(image, (125, 137), RED)
        # The item half off the left edge: its right half (green, yellow) is on the canvas.
        assert_colour(image, (25, 37), GREEN)
        assert_colour(image, (25, 62), YELLOW)

    def test_items_are_drawn_in_item_order(self, local_scene: Scene) -> None:
        mount = local_scene.mount(120, 120)
        # Inserted last, drawn first: the later ItemOrder covers it.
        later = local_scene.item(mount, 2, (10, 10))
        earlier = local_scene.item(mount, 1, (10, 10))
        local_scene.document(later, "later.png", Image.new("RGB", (50, 50), GREEN))
        local_scene.document(earlier, "earlier.png", Image.new("RGB", (50, 50), RED))

        image = decode(local_scene.composer().jpeg(mount))

        assert_colour(image, (60, 60), GREEN)

    def test_unknown_mount(self, world: World) -> None:
        """On every database, the Open Dental schema without mount tables included."""
        composer = MountComposer(world.engine, LocalAtoZ(world.root), world.root, Renderer())

        with pytest.raises(MountNotFoundError, match=r"^Mount not found$") as caught:
            composer.jpeg(404)

        assert isinstance(caught.value, AtozError)
        assert caught.value.mount_num == 404

    def test_too_large_a_mount_is_refused(self, local_scene: Scene) -> None:
        mount = local_scene.mount(100_000, 100_000)

        with pytest.raises(MountTooLargeError):
            local_scene.composer().jpeg(mount)


class TestBadDocuments:
    @pytest.mark.parametrize(
        ("name", "content"),
        [
            ("missing.png", None),
            ("damaged.png", b"\x89PNG\r\n\x1a\n not really"),
            ("notes.txt", b"a text file on a mount"),
            ("../escape.png", b""),
        ],
        ids=["missing", "damaged", "not-an-image", "unsafe-name"],
    )
    def test_drawn_as_empty_with_a_warning(
        self, scene: Scene, name: str, content: bytes | None
    ) -> None:
        mount = scene.mount(230, 120)
        bad = scene.item(mount, 7, (10, 10))
        good = scene.item(mount, 8, (120, 10))
        if name.startswith("../"):
            scene.world.add_document(scene.pat_num, name, 0, MountItemNum=bad)
        else:
            scene.document(bad, name, content)
        scene.document(good, "good.png", quadrants(WIDE))

        with capture_logs() as logs:
            image = decode(scene.composer().jpeg(mount))

        assert len(grey_pixels(image, (10, 10))) > 30
        assert_wide_picture(image, (120, 10), (RED, GREEN, BLUE, YELLOW))
        warnings = [e for e in logs if e["log_level"] == "warning"]
        assert [e["event"] for e in warnings] in (["mount.item_missing"], ["mount.item_unreadable"])
        assert warnings[0]["mountnum"] == mount

    def test_raw_base64_that_is_not_base64(self, bare_world: World) -> None:
        scene = make_scene(bare_world, "InDatabase")
        mount = scene.mount(120, 120)
        item = scene.item(mount, 1, (10, 10))
        scene.document(item, "bad.png", None, RawBase64="not base64 !!")

        with capture_logs() as logs:
            image = decode(scene.composer().jpeg(mount))

        assert len(grey_pixels(image, (10, 10))) > 20
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "mount.item_unreadable"
        ]


class TestInDatabase:
    def test_bytes_come_from_raw_base64_not_the_folder(self, bare_world: World) -> None:
        scene = make_scene(bare_world, "InDatabase")
        mount = scene.mount(120, 120)
        item = scene.item(mount, 1, (10, 10))
        scene.document(item, "photo.png", quadrants(WIDE), DegreesRotated=180)
        # A file of the same name in the folder must not be what is drawn.
        Image.new("RGB", WIDE, MAGENTA).save(bare_world.folder(scene.folder) / "photo.png")

        image = decode(scene.composer().jpeg(mount))

        assert_wide_picture(image, (10, 10), (YELLOW, BLUE, GREEN, RED))


class TestRendererFit:
    """The renderer's general form: any box, and a file given as bytes."""

    @pytest.mark.parametrize(
        ("source", "box", "shown"),
        [
            ((400, 250), (200, 100), (160, 100)),
            ((400, 250), (100, 200), (100, 62)),
            ((250, 400), (300, 80), (50, 80)),
            ((100, 100), (30, 70), (30, 30)),
        ],
    )
    def test_fits_any_box(
        self,
        tmp_path: Path,
        source: tuple[int, int],
        box: tuple[int, int],
        shown: tuple[int, int],
    ) -> None:
        path = tmp_path / "photo.png"
        framed(source).save(path)

        fitted = Renderer().fit(path, box=box)

        assert fitted.size == box
        assert fitted.mode == "RGBA"
        content = fitted.getchannel("A").getbbox()
        assert content is not None
        assert (content[2] - content[0], content[3] - content[1]) == shown
        # Centred: the padding on either side differs by at most a pixel.
        assert abs(content[0] - (box[0] - content[2])) <= 1
        assert abs(content[1] - (box[1] - content[3])) <= 1

    def test_render_is_fit_into_the_thumbnail_square(self, tmp_path: Path) -> None:
        path = tmp_path / "photo.jpg"
        quadrants((400, 250)).save(path, quality=95)
        renderer = Renderer()
        adjust = Adjust(flip=True, degrees=90, crop=(10, 10, 300, 200))

        assert (
            renderer.render(path, adjust=adjust).tobytes()
            == renderer.fit(path, box=(100, 100), adjust=adjust).tobytes()
        )

    @pytest.mark.parametrize("ext", ["png", "jpg", "tif", "gif", "bmp"])
    def test_bytes_render_as_the_file_does(self, tmp_path: Path, ext: str) -> None:
        path = tmp_path / f"photo.{ext}"
        quadrants((300, 200)).save(path)
        renderer = Renderer()
        adjust = Adjust(degrees=90, crop=(0, 0, 200, 200))

        from_file = renderer.fit(path, box=(120, 90), adjust=adjust)
        from_bytes = renderer.fit(
            path.read_bytes(), box=(120, 90), adjust=adjust, name=f"x.{ext.upper()}"
        )

        assert from_bytes.tobytes() == from_file.tobytes()

    def test_dicom_bytes(self, tmp_path: Path) -> None:
        path = write_dicom(tmp_path / "scan.dcm", dicom_levels((120, 80), 400, 3000))

        fitted = Renderer().fit(path.read_bytes(), box=(60, 60), name="scan.dcm")

        assert fitted.size == (60, 60)
        assert pixel(fitted, (30, 30))[0] > pixel(fitted, (2, 30))[0] + 100

    def test_pdf_bytes(self) -> None:
        buffer = io.BytesIO()
        framed((400, 250)).save(buffer, "PDF", resolution=72.0)

        fitted = Renderer().fit(buffer.getvalue(), box=(200, 200), name="letter.pdf")

        assert near(pixel(fitted, (100, 100)), MIDDLE, 8)
        assert near(pixel(fitted, (100, 40)), EDGE, 8)

    @pytest.mark.parametrize(
        ("data", "name"),
        [(b"not an image", "x.png"), (b"\x89PNG", ""), (b"", "x.doc")],
        ids=["damaged", "no-name", "not-an-image"],
    )
    def test_bad_bytes(self, data: bytes, name: str) -> None:
        with pytest.raises(ThumbnailError):
            Renderer().fit(data, box=(50, 50), name=name)

    @pytest.mark.parametrize("box", [(0, 10), (10, 0), (-1, -1)])
    def test_an_empty_box_is_a_mistake(self, tmp_path: Path, box: tuple[int, int]) -> None:
        path = tmp_path / "photo.png"
        framed((40, 40)).save(path)

        with pytest.raises(ValueError, match="holds no picture"):
            Renderer().fit(path, box=box)


class TestGolden:
    def test_matches_the_golden_image(self, scene: Scene) -> None:
        mount = four_item_scene(scene)
        fresh = decode(scene.composer().jpeg(mount))
        if REGENERATE:
            GOLDEN.parent.mkdir(exist_ok=True)
            fresh.save(GOLDEN, format="PNG", optimize=True)
        with Image.open(GOLDEN) as stored:
            golden = stored.convert("RGB")

        assert fresh.size == golden.size
        difference = np.abs(np.asarray(fresh).astype(int) - np.asarray(golden).astype(int))
        # Another Pillow or libjpeg may round differently, and draw the number with another
        # build of its font: the whole image may move a little, the pictures and the outlines
        # not at all, and the number only within its own item.
        assert difference.reshape(-1, 3).mean(axis=0).max() < 3
        outside_text = difference.copy()
        x, y = EMPTY_AT
        outside_text[y + 3 : y + ITEM - 3, x + 3 : x + ITEM - 3] = 0
        assert outside_text.max() <= 40
