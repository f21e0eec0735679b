"""Clinics: a world filled with the image categories and the patient a test works with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from atoz_watcher.rules.layout import patient_dir
from tests.support.worlds import World


def misc_and_xrays(world: World) -> tuple[World, int, int]:
    """Two visible image categories, "Misc" first (the default for an unprefixed file)."""
    misc = world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    return world, misc, xrays


@dataclass
class Clinic:
    world: World
    pat: int
    xrays: int  # the first visible image category
    photos: int
    other: int  # a definition that is not an image category

    @property
    def folder(self) -> Path:
        return patient_dir(self.world.root, f"SmithJohn{self.pat}")

    def files(self) -> list[Path]:
        return sorted(p for p in self.world.root.rglob("*") if p.is_file())


def make_clinic(world: World) -> Clinic:
    """A hidden category first, two visible image categories, a definition of another kind,
    and John Smith, whose ImageFolder is empty (computed on the first upload)."""
    world.add_category("Old", order=0, hidden=True)
    xrays = world.add_category("X-Rays", order=1)
    photos = world.add_category("Photos", order=2)
    other = world.add_category("Blue", order=0, category=1)
    pat = world.add_patient("Smith", "John")  # ImageFolder empty: computed on first upload
    return Clinic(world=world, pat=pat, xrays=xrays, photos=photos, other=other)
