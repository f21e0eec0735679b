"""configure_logging(): the only structlog.configure() call."""

from __future__ import annotations

import logging
import sys
import warnings
from typing import TextIO

import structlog

LEVELS = ("debug", "info", "warning", "error")


def configure_logging(*, level: str = "info", stream: TextIO | None = None) -> None:
    """One event per line on ``stream`` (stderr): JSON unless it is a terminal."""
    out = stream if stream is not None else sys.stderr
    renderer: structlog.typing.Processor
    if out.isatty():
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=False),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries' warnings (Pillow on a damaged EXIF block, say) become one log line each
    # instead of two lines of free text on stderr among the JSON.
    warnings.showwarning = _log_warning
    ignore_known_warnings()


def ignore_known_warnings() -> None:
    """Third parties' deprecations of things we never call, each by exact category and module.

    asyncssh (the SFTP endpoints) names cryptography's DSA key classes in a type alias as it is
    imported, and cryptography 51 deprecated DSA. We never use DSA: a transfer logs in with a
    password and compares the host key with known_hosts; so a warning at every first transfer
    would tell an operator nothing.
    """
    from cryptography.utils import CryptographyDeprecationWarning  # noqa: PLC0415

    warnings.filterwarnings(
        "ignore",
        message="DSA is deprecated",
        category=CryptographyDeprecationWarning,
        module=r"asyncssh\.",
    )


def _log_warning(  # noqa: PLR0917 - the signature of warnings.showwarning
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    del file, line
    structlog.get_logger("atoz_watcher.warnings").warning(
        "python.warning",
        category=category.__name__,
        message=str(message),
        where=f"{filename}:{lineno}",
    )
