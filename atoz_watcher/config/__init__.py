"""Configuration: ``sections`` (the per-table models the lower rooms take) and ``settings``
(Settings and load_settings, which only ``atoz_watcher.app`` imports).

Imports nothing, so a room that takes one section does not pay for pydantic-settings.
"""
