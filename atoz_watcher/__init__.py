"""atoz-watcher: Open Dental's A-to-Z folder import, done the moment a file lands."""

__version__ = "0.1.0"

__all__ = ["__version__"]
