"""The README's screenshots of the front-desk page: ``docs/ui-today.png`` and ``docs/ui-inbox.png``.

    .venv/bin/python -m tests.ui.browser.screenshots [FOLDER]      # FOLDER: docs/ by default

A small practice, as `atoz-watcher demo` would make one (fictional patients; radiographs,
photos and forms drawn here), served by a live `atoz-watcher run` on SQLite
(tests/support/front_desk.py): files dropped into patient folders, a batch with a cover sheet
and two scans without one put into the scanner inbox, then Today and the Inbox photographed in
Debian's headless chromium at 1280 px and saved as palette PNGs (each well under 200 KB).
Not a test: it writes into the repository, so it runs only when asked.
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from atoz_watcher.imaging.coversheet import CoverSheet
from tests.support import scans
from tests.support.browser import Browser, open_browser
from tests.support.front_desk import STAFF, STAFF_PASSWORD, FrontDesk, front_desk
from tests.support.waiting import wait_for
from tests.support.worlds import make_world

DPI = 100
WIDTH, HEIGHT = 1280, 860
REPO = Path(__file__).resolve().parents[3]


def radiograph(seed: int, size: tuple[int, int] = (900, 450)) -> bytes:
    """A grey panoramic-like picture: a dark field with an arch of light teeth."""
    image = Image.new("L", size, 25)
    draw = ImageDraw.Draw(image)
    width, height = size
    for row, (top, grow) in enumerate(((0.18, 1), (0.56, -1))):
        for i in range(14):
            x = width * (0.08 + i * 0.062)
            bend = abs(i - 6.5) * 4 * grow
            y = height * top + bend
            shade = 170 + (seed * 13 + i * 7 + row * 5) % 60
            draw.rounded_rectangle((x, y, x + width * 0.05, y + height * 0.26), 12, fill=shade)
    image = image.filter(ImageFilter.GaussianBlur(3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def photo(colour: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> bytes:
    """An intra-oral photo's stand-in: a warm field with a lighter band."""
    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).ellipse(
        (size[0] * 0.15, size[1] * 0.3, size[0] * 0.85, size[1] * 0.7), fill=(240, 236, 225)
    )
    out = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(6)).save(out, "JPEG", quality=80)
    return out.getvalue()


def fill(desk: FrontDesk, work: Path) -> None:
    """Patients and their files, and scans in the inbox; waits until each is where it goes."""
    alvarez = desk.add_patient("Alvarez", "Maria")
    chen = desk.add_patient("Chen", "Wei")
    okonkwo = desk.add_patient("Okonkwo", "Chidi")
    novak = desk.add_patient("Novak", "Petra")
    brennan = desk.add_patient("Brennan", "Liam")
    xrays = f"_{desk.categories['X-Rays']}_"  # Open Dental's prefix: the category's DefNum
    drops = [
        (alvarez.folder / f"{xrays}panoramic.jpg", radiograph(1)),
        (chen.folder / f"{xrays}bitewings.jpg", radiograph(2, (700, 420))),
        (okonkwo.folder / "smile-before.jpg", photo((190, 90, 80))),
        (novak.folder / f"{xrays}panoramic-2026.jpg", radiograph(3)),
        (alvarez.folder / "smile-after.jpg", photo((200, 110, 95))),
    ]
    for path, data in drops:
        path.write_bytes(data)
    # A medical-history form, scanned behind Brennan's cover sheet into the inbox.
    sheet = CoverSheet(
        brennan.pat_num,
        brennan.name,
        category=desk.categories["Forms"],
        category_label="Forms",
    )
    batch = scans.batch_pages([scans.Cover(sheet), 1, 2], dpi=DPI)
    scans.write_pdf(batch, work / "batch.pdf", dpi=DPI)
    shutil.move(work / "batch.pdf", desk.inbox / "scan0041.pdf")
    wait_for(lambda: len(desk.world.documents()) >= len(drops) + 1, timeout=60)
    for number, name in ((3, "scan0042.pdf"), (5, "scan0043.pdf")):
        scans.write_pdf([scans.content_page(number, dpi=DPI)], work / name, dpi=DPI)
        shutil.move(work / name, desk.inbox / name)
        wait_for((desk.unmatched() / name).exists, timeout=60)


def log_in(browser: Browser, desk: FrontDesk) -> None:
    browser.get(desk.page("/ui/login"))
    browser.element("#username").send_keys(STAFF)
    browser.element("#password").send_keys(STAFF_PASSWORD)
    browser.element("#login button[type=submit]").click()
    browser.at("/ui/")


def all_images_drawn(browser: Browser) -> None:
    browser.until(
        lambda _: browser.script(
            "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
        ),
        what="every picture on the page drawn",
    )


def save_small(browser: Browser, path: Path) -> Path:
    """The window as a 256-colour PNG (a UI of flat colours loses nothing that shows)."""
    shot = Image.open(io.BytesIO(browser.driver.get_screenshot_as_png())).convert("RGB")
    shot.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


@contextmanager
def _practice(folder: Path) -> Iterator[FrontDesk]:
    with (
        contextmanager(make_world)("sqlite", folder) as world,
        front_desk(world, folder) as desk,
    ):
        yield desk


def main(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="atoz-screenshots-") as temp:
        folder = Path(temp)
        work = folder / "scanner"
        work.mkdir()
        with _practice(folder) as desk, open_browser(folder / "browser") as browser:
            fill(desk, work)
            browser.driver.set_window_size(WIDTH, HEIGHT)
            log_in(browser, desk)
            browser.element("#today tbody tr[data-docnum]")
            all_images_drawn(browser)
            today = save_small(browser, out / "ui-today.png")
            browser.get(desk.page("/ui/inbox"))
            browser.element("#unmatched tbody tr")
            all_images_drawn(browser)
            inbox = save_small(browser, out / "ui-inbox.png")
    return [today, inbox]


if __name__ == "__main__":
    for saved in main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs"):
        sys.stdout.write(f"{saved}: {saved.stat().st_size // 1024} KB\n")
