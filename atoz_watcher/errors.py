"""Exceptions that carry data; one place (CLI, daemon loop, API) decides what they mean."""

from __future__ import annotations

from pathlib import Path


class AtozError(Exception):
    """Base of every error atoz-watcher raises on purpose."""


class ConfigError(AtozError):
    """The configuration cannot be used; the message names the key."""


class DatabaseUnavailableError(AtozError):
    """The database cannot be reached or refused the work; worth retrying later."""


class NoImageCategoryError(AtozError):
    """There is no visible image category (definition.Category=18) to put a file in."""

    def __init__(self) -> None:
        super().__init__(
            "no visible image category (definition rows with Category=18 and IsHidden=0); "
            "add one in Open Dental (Setup, Definitions, Image Categories) or run init-db"
        )


class RootUnusableError(AtozError):
    """The A-to-Z root is missing or cannot be listed."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"A-to-Z root {path} is unusable: {reason}")


class LockTimeoutError(DatabaseUnavailableError):
    """Another registrar held the registration lock for too long."""


class ThumbnailError(AtozError):
    """A file gets no thumbnail; ``reason`` says why (damaged, unknown format, too large)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"no thumbnail for {path}: {reason}")


class NoSuchPatientError(AtozError):
    """A command was given a PatNum that no patient row has."""

    def __init__(self, pat_num: int) -> None:
        self.pat_num = pat_num
        super().__init__(f"--patient {pat_num}: there is no patient with PatNum {pat_num}")


class ArgumentError(AtozError):
    """A command's argument names something it cannot use; the message names the option."""


class DeletedPatientError(ArgumentError):
    """A command was given a deleted patient (PatStatus 4), who takes no new documents."""

    def __init__(self, pat_num: int) -> None:
        self.pat_num = pat_num
        super().__init__(
            f"--patient {pat_num}: patient {pat_num} is deleted (PatStatus 4) and takes no "
            "documents"
        )


class NoSuchCategoryError(ArgumentError):
    """A command was given a category that is no visible image category, or names several."""

    def __init__(self, given: str, reason: str) -> None:
        self.given = given
        self.reason = reason
        super().__init__(f"--category {given}: {reason}")


class OutputExistsError(ArgumentError):
    """A command would overwrite a file it was not told it may replace."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path} exists; pass --force to replace it, or --out another file")
