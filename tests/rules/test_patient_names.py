"""A patient's name as Open Dental prints it: ``LName, 'Preferred' FName M``."""

from __future__ import annotations

import pytest

from atoz_watcher.rules.patient_names import name_lf


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("Smith", "John"), "Smith, John"),
        (("Smith", "John", "Jack"), "Smith, 'Jack' John"),
        (("Smith", "John", "", "Q"), "Smith, John Q"),
        (("Smith", "John", "Jack", "Q"), "Smith, 'Jack' John Q"),
        ((" Müller ", " Zoë ", "  ", " "), "Müller, Zoë"),
        (("Smith", ""), "Smith"),
    ],
)
def test_name_lf(parts: tuple[str, ...], expected: str) -> None:
    assert name_lf(*parts) == expected
