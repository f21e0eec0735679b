"""Routing a scan by a token in its file name (``PAT18_consent.pdf`` goes to PatNum 18).

Pure. The token is found by a regular expression, configurable, with named groups ``patnum``
(a PatNum), ``chart`` (a ChartNumber) and optionally ``category`` (a DefNum or an image
category's name). It is searched in the name without its ``_##_`` prefix (cut as in the
patient folders: :func:`atoz_watcher.rules.naming.parse_prefix`) and without its extension,
so the extension never routes.

The default (:data:`DEFAULT_PATTERN`) takes ``PAT18``, ``pat-18``, ``pat_18``, ``PAT 18`` and
``PatNum18`` in any case, standing on their own: at the start of the name or after a character
that is not a letter or digit, and followed by the end of the name or such a character.
Nothing else routes. A date (``2026-12-05_scan``, ``20261205``) or a scanner's counter
(``scan0018``, ``IMG_0018``, ``Scan 18``) has no ``pat``; ``patient`` and ``pat`` have no
number; ``PAT18x`` and ``PAT18consent`` do not route, because the number runs into letters
and a misplaced character must not pick another patient; ``PAT018`` does not route (a PatNum
is never written with a leading zero, a counter often is).

The category is the token's ``category`` group when the pattern has one and it matched, else
the ``_##_`` prefix's number; the caller falls back to the inbox's default category.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from atoz_watcher.rules.naming import parse_prefix

DEFAULT_PATTERN: Final = r"(?i)(?<![a-z0-9])pat(?:num)?[-_ ]?(?P<patnum>[1-9][0-9]*)(?![a-z0-9])"
# What a ChartNumber token could look like, for the README: ``CHART-A1234``.
CHART_EXAMPLE: Final = r"(?i)(?<![a-z0-9])chart[-_ ]?(?P<chart>[a-z0-9]+)(?![a-z0-9])"
GROUPS: Final = frozenset({"patnum", "chart", "category"})
_BIGINT_MAX: Final = 2**63 - 1
_MAX_CHART_CHARS: Final = 20  # patient.ChartNumber is varchar(20)


class TokenPatternError(ValueError):
    """A configured token pattern that cannot be used; the message says why."""


class TokenMiss(StrEnum):
    """Why a name is not routed by its token. The values appear in logs and metrics."""

    NO_TOKEN = "no-token"  # noqa: S105 - a reason, not a secret
    AMBIGUOUS = "ambiguous-token"
    INVALID = "invalid-token"


@dataclass(frozen=True, slots=True)
class TokenRoute:
    """Who a name's token names (a PatNum, a ChartNumber, or both) and its category, if any."""

    pat_num: int | None
    chart_number: str | None
    category: int | str | None


def _positive_bigint(text: str) -> int | None:
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if 0 < number <= _BIGINT_MAX else None


def _category(text: str | None) -> int | str | None:
    if text is None or not text.strip():
        return None
    number = _positive_bigint(text)
    return number if number is not None else text.strip()


@dataclass(frozen=True, slots=True)
class TokenRule:
    """A validated token pattern. Build it with :meth:`compile`."""

    pattern: re.Pattern[str]

    @classmethod
    def compile(cls, text: str = DEFAULT_PATTERN) -> TokenRule:
        """Check and compile a user's pattern; :class:`TokenPatternError` says what is wrong."""
        try:
            pattern = re.compile(text)
        except re.error as exc:
            raise TokenPatternError(
                f"the token pattern {text!r} is not a valid regular expression: {exc}"
            ) from exc
        names = set(pattern.groupindex)
        unknown = names - GROUPS
        if unknown:
            raise TokenPatternError(
                f"the token pattern {text!r} has unknown group(s) "
                f"{', '.join(sorted(unknown))}; the groups are (?P<patnum>...), "
                "(?P<chart>...) and (?P<category>...)"
            )
        if not names & {"patnum", "chart"}:
            raise TokenPatternError(
                f"the token pattern {text!r} names no patient: it needs a group "
                "(?P<patnum>...) or (?P<chart>...)"
            )
        return cls(pattern)

    def route(self, name: str) -> TokenRoute | TokenMiss:
        """The route ``name``'s token gives, or why there is none.

        Several tokens in one name route only when they all say the same thing.
        """
        prefix = parse_prefix(name)
        rest = name if prefix is None else prefix.rest
        stem, dot, _extension = rest.rpartition(".")
        if not dot or not stem:
            stem = rest
        routes: set[TokenRoute] = set()
        for match in self.pattern.finditer(stem):
            route = self._route(match)
            if route is None:
                return TokenMiss.INVALID
            routes.add(route)
        if not routes:
            return TokenMiss.NO_TOKEN
        if len(routes) > 1:
            return TokenMiss.AMBIGUOUS
        (route,) = routes
        if route.category is None and prefix is not None and prefix.number:
            return TokenRoute(route.pat_num, route.chart_number, prefix.number)
        return route

    @staticmethod
    def _route(match: re.Match[str]) -> TokenRoute | None:
        groups = match.groupdict()
        pat_text = groups.get("patnum")
        chart = groups.get("chart")
        pat_num = None if pat_text is None else _positive_bigint(pat_text)
        if pat_text is not None and pat_num is None:
            return None
        if chart is not None and not 0 < len(chart) <= _MAX_CHART_CHARS:
            return None
        if pat_num is None and chart is None:
            return None
        return TokenRoute(pat_num, chart, _category(groups.get("category")))
