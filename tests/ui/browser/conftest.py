"""The ``browser`` fixture (tests/support/browser.py) for every test in this folder."""

from tests.support.browser import browser

__all__ = ["browser"]
