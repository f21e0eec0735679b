"""Mount composites: a mount drawn as one JPEG, the way Open Dental shows it.

thumbs.py and composite.py are the two modules that import Pillow: ``thumbs.Renderer`` fits one
document's image into a box (crop, flip, rotation and windowing applied), this module lays the
boxes out on the mount's canvas and draws what is not an image (numbers, text, outlines).

A bad item never fails the composite: a document whose file is missing, unreadable or not an
image is drawn as an empty item (its number) and logged.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Final

import structlog
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import Engine

from atoz_watcher.db import queries
from atoz_watcher.db.queries import MountDocument, MountItemLayout, MountLayout
from atoz_watcher.errors import AtozError, ThumbnailError
from atoz_watcher.imaging.render import Adjust, Renderer
from atoz_watcher.rules.layout import folder_name, letter_folder
from atoz_watcher.storage import Storage
from atoz_watcher.storage.base import require_plain
from atoz_watcher.system.contained import Tree

log = structlog.get_logger("atoz_watcher.composite")

RGBA = tuple[int, int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

OUTLINE: Final = (100, 100, 100, 255)
# Empty items' numbers, and text whose ColorFore is fully transparent (a mount row that never
# set it): readable on both a black and a white background.
NUMBER_GREY: Final = (128, 128, 128, 255)
JPEG_QUALITY: Final = 90
# A canvas (or one item) larger than this is refused instead of allocated: the sizes come from
# database rows, and a canvas takes 4 bytes a pixel while it is drawn (160 MB at this limit).
MAX_CANVAS_PIXELS: Final = 40_000_000
# JPEG cannot hold a side longer than this.
_JPEG_MAX_SIDE: Final = 65_500
# Text items without a FontSize; the limits for an empty item's number (a third of the item's
# shorter side) and for any text.
_TEXT_SIZE: Final = 14
_NUMBER_SIZE_MIN: Final = 10
_FONT_SIZE_MAX: Final = 200
_WHITE: Final = (255, 255, 255)


class MountNotFoundError(AtozError):
    """No mount has this MountNum (or the database has no mount table)."""

    def __init__(self, mount_num: int) -> None:
        self.mount_num = mount_num
        super().__init__("Mount not found")


class MountTooLargeError(AtozError):
    """The mount's canvas or one of its items is too large to draw."""

    def __init__(self, mount_num: int, width: int, height: int) -> None:
        self.mount_num = mount_num
        self.size = (width, height)
        super().__init__(
            f"mount {mount_num} is too large to draw: {width}x{height} is over "
            f"{MAX_CANVAS_PIXELS:,} pixels"
        )


def argb(value: int) -> RGBA:
    """Open Dental's colour (a .NET ARGB packed into a signed 32-bit int) as (r, g, b, a).

    -1 is opaque white, -16777216 opaque black, 0 transparent black.
    """
    packed = value & 0xFFFFFFFF
    return ((packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF, (packed >> 24) & 0xFF)


class MountComposer:
    """Draws a mount's composite from the database and the documents' files (or RawBase64)."""

    def __init__(self, engine: Engine, storage: Storage, root: Path, renderer: Renderer) -> None:
        self._engine = engine
        self._storage = storage
        self._root = root
        self._tree = Tree(root)
        self._renderer = renderer

    def jpeg(self, mount_num: int) -> bytes:
        """The composite as JPEG bytes. Raises MountNotFoundError and MountTooLargeError."""
        buffer = io.BytesIO()
        # 4:4:4: the 1 px outlines and the text stay sharp next to coloured images.
        self.image(mount_num).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        return buffer.getvalue()

    def image(self, mount_num: int) -> Image.Image:
        """The composite as an RGB image of the mount's Width x Height."""
        # The rows are read first and the connection handed back: no read stays open (on
        # MyISAM, no table lock is held against Open Dental) while images are decoded.
        with self._engine.connect() as conn:
            layout = queries.mount_layout(conn, mount_num=mount_num)
            if layout is None:
                raise MountNotFoundError(mount_num)
            items = queries.mount_item_layouts(conn, mount_num=mount_num)
            documents = queries.mount_documents(conn, mount_num=mount_num)
        width, height = max(1, layout.width), max(1, layout.height)
        _require_drawable(mount_num, width, height)
        for item in items:
            _require_drawable(mount_num, max(0, item.width), max(0, item.height))
        canvas = Image.new("RGBA", (width, height), argb(layout.color_back))
        for item in items:
            if item.width < 1 or item.height < 1:
                continue  # nothing to draw, not even an outline
            tile = self._tile(layout, item, documents.get(item.mount_item_num))
            _paste(canvas, tile, (item.x, item.y))
        # JPEG has no alpha: a translucent ColorBack is shown over white, as a viewer would.
        flat = Image.new("RGB", canvas.size, _WHITE)
        flat.paste(canvas, mask=canvas.getchannel("A"))
        return flat

    # -- one item ----------------------------------------------------------------------------------

    def _tile(
        self, layout: MountLayout, item: MountItemLayout, document: MountDocument | None
    ) -> Image.Image:
        """The item's rectangle, transparent where the canvas shows through, outline included."""
        box = (item.width, item.height)
        tile: Image.Image | None = None
        if item.text_showing:
            tile = _text_tile(layout, item)
        elif document is not None:
            tile = self._picture(layout.mount_num, document, box)
        if tile is None:
            tile = _number_tile(item)
        ImageDraw.Draw(tile).rectangle((0, 0, box[0] - 1, box[1] - 1), outline=OUTLINE)
        return tile

    def _picture(
        self, mount_num: int, document: MountDocument, box: tuple[int, int]
    ) -> Image.Image | None:
        """The document's image fitted into ``box``; None (and a warning) when it cannot be."""
        fields = {
            "mountnum": mount_num,
            "mountitemnum": document.mount_item_num,
            "docnum": document.doc_num,
            "patnum": document.pat_num,
        }
        adjust = Adjust(
            crop=document.crop, flip=document.flip, degrees=document.degrees, window=document.window
        )
        try:
            with self._source(document) as source:
                return self._renderer.fit(source, box=box, adjust=adjust, name=document.file_name)
        except ThumbnailError as exc:
            log.warning("mount.item_unreadable", reason=exc.reason, **fields)
        except FileNotFoundError:
            log.warning("mount.item_missing", file_name=document.file_name, **fields)
        except (OSError, ValueError) as exc:
            # Unsafe names, RawBase64 that is not base64, a folder we may not read.
            log.warning("mount.item_unreadable", reason=str(exc), **fields)
        return None

    @contextmanager
    def _source(self, document: MountDocument) -> Iterator[BinaryIO | bytes]:
        """The document's file in its patient folder (opened without following a link), or
        its bytes when the storage holds them."""
        folder = document.image_folder or folder_name(
            document.lname, document.fname, document.pat_num
        )
        if self._storage.kind == "LocalAtoZ":
            # An open file, not bytes: the renderer then reads only what it decodes (a JPEG at
            # 1/8).
            parts = (
                letter_folder(require_plain(folder, "patient folder")),
                folder,
                require_plain(document.file_name, "file name"),
            )
            with self._tree.open_read(self._root.joinpath(*parts)) as handle:
                yield handle
            return
        # One row at a time, in a short connection: RawBase64 can hold megabytes.
        with self._engine.connect() as conn:
            raw = queries.raw_base64(conn, doc_num=document.doc_num)
        yield self._storage.read(folder=folder, file_name=document.file_name, raw_base64=raw)


# -- drawing ---------------------------------------------------------------------------------------


def _require_drawable(mount_num: int, width: int, height: int) -> None:
    if width * height > MAX_CANVAS_PIXELS or max(width, height) > _JPEG_MAX_SIDE:
        raise MountTooLargeError(mount_num, width, height)


def _paste(canvas: Image.Image, tile: Image.Image, at: tuple[int, int]) -> None:
    """Composite ``tile`` over ``canvas`` with its corner at ``at``, clipped to the canvas.

    alpha_composite, not paste with a mask: paste would blend the canvas's own alpha too.
    It takes no negative destination, so the part of the tile on the canvas is cut out first.
    """
    left, top = max(0, at[0]), max(0, at[1])
    right, bottom = min(canvas.width, at[0] + tile.width), min(canvas.height, at[1] + tile.height)
    if right <= left or bottom <= top:
        return  # wholly outside the canvas
    source = (left - at[0], top - at[1], right - at[0], bottom - at[1])
    canvas.alpha_composite(tile, dest=(left, top), source=source)


def _number_tile(item: MountItemLayout) -> Image.Image:
    tile = Image.new("RGBA", (item.width, item.height), (0, 0, 0, 0))
    size = min(_FONT_SIZE_MAX, max(_NUMBER_SIZE_MIN, min(item.width, item.height) // 3))
    _centred_text(tile, str(item.item_order), ImageFont.load_default(size=size), NUMBER_GREY)
    return tile


def _text_tile(layout: MountLayout, item: MountItemLayout) -> Image.Image:
    """A text item: its TextShowing in ColorFore on ColorTextBack (both ARGB)."""
    back = argb(layout.color_text_back)
    fore = argb(layout.color_fore)
    tile = Image.new("RGBA", (item.width, item.height), back if back[3] else (0, 0, 0, 0))
    # Bounded: a FontSize comes from a row (SQLite even stores inf), never a glyph of megapixels.
    if 1 <= item.font_size <= _FONT_SIZE_MAX:
        size = round(item.font_size)
    else:
        size = _FONT_SIZE_MAX if item.font_size > _FONT_SIZE_MAX else _TEXT_SIZE
    colour = fore if fore[3] else NUMBER_GREY
    _centred_text(tile, item.text_showing, ImageFont.load_default(size=size), colour)
    return tile


def _centred_text(tile: Image.Image, text: str, font: Font, colour: RGBA) -> None:
    """Draw ``text`` (lines centred) in the middle of ``tile``; what overflows is clipped."""
    draw = ImageDraw.Draw(tile)
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, align="center")
    x = (tile.width - (right - left)) / 2 - left
    y = (tile.height - (bottom - top)) / 2 - top
    draw.multiline_text((x, y), text, font=font, fill=colour, align="center")
