"""Routing by a token in the file name: the default pattern, the ``_##_`` prefix, user patterns."""

from __future__ import annotations

import pytest

from atoz_watcher.rules.tokens import (
    CHART_EXAMPLE,
    DEFAULT_PATTERN,
    TokenMiss,
    TokenPatternError,
    TokenRoute,
    TokenRule,
)

DEFAULT = TokenRule.compile()


def _pat(pat_num: int, category: int | str | None = None) -> TokenRoute:
    return TokenRoute(pat_num=pat_num, chart_number=None, category=category)


class TestDefaultPattern:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param("PAT18_consent.pdf", _pat(18), id="PAT18_"),
            pytest.param("pat-18 consent.pdf", _pat(18), id="pat-18"),
            pytest.param("PatNum18.jpg", _pat(18), id="PatNum18"),
            pytest.param("patnum_18.tif", _pat(18), id="patnum_18"),
            pytest.param("PAT 18.pdf", _pat(18), id="PAT-space-18"),
            pytest.param("pat18", _pat(18), id="no-extension"),
            pytest.param("consent PAT18.pdf", _pat(18), id="token-after-words"),
            pytest.param("consent-pat-18-signed.pdf", _pat(18), id="token-in-the-middle"),
            pytest.param("PAT18_again_PAT18.pdf", _pat(18), id="same-token-twice"),
            pytest.param("PAT9223372036854775807.pdf", _pat(2**63 - 1), id="bigint-max"),
            pytest.param("_5_PAT18_consent.pdf", _pat(18, 5), id="category-prefix"),
            pytest.param("__PAT18.pdf", _pat(18), id="empty-prefix"),
        ],
    )
    def test_routes(self, name, expected):
        assert DEFAULT.route(name) == expected

    @pytest.mark.parametrize(
        ("name", "miss"),
        [
            pytest.param("2026-12-05_scan.pdf", TokenMiss.NO_TOKEN, id="date"),
            pytest.param("20261205.pdf", TokenMiss.NO_TOKEN, id="date-compact"),
            pytest.param("scan0018.pdf", TokenMiss.NO_TOKEN, id="scan-counter"),
            pytest.param("IMG_0018.JPG", TokenMiss.NO_TOKEN, id="camera-counter"),
            pytest.param("Scan 18.pdf", TokenMiss.NO_TOKEN, id="scan-space-counter"),
            pytest.param("18.pdf", TokenMiss.NO_TOKEN, id="bare-number"),
            pytest.param("patient.pdf", TokenMiss.NO_TOKEN, id="patient"),
            pytest.param("patient 18.pdf", TokenMiss.NO_TOKEN, id="patient-18"),
            pytest.param("pat.pdf", TokenMiss.NO_TOKEN, id="pat"),
            pytest.param("PAT18x.pdf", TokenMiss.NO_TOKEN, id="number-runs-into-letter"),
            pytest.param("PAT18consent.pdf", TokenMiss.NO_TOKEN, id="number-runs-into-word"),
            pytest.param("PAT018.pdf", TokenMiss.NO_TOKEN, id="leading-zero"),
            pytest.param("PAT0.pdf", TokenMiss.NO_TOKEN, id="zero"),
            pytest.param("spat18.pdf", TokenMiss.NO_TOKEN, id="pat-inside-a-word"),
            pytest.param("PAT--18.pdf", TokenMiss.NO_TOKEN, id="two-separators"),
            pytest.param("scan.pat18", TokenMiss.NO_TOKEN, id="token-in-extension"),
            pytest.param("_18_scan.pdf", TokenMiss.NO_TOKEN, id="prefix-alone"),
            pytest.param("PAT\uff11\uff18.pdf", TokenMiss.NO_TOKEN, id="fullwidth-digits"),
            pytest.param("PAT18_PAT19.pdf", TokenMiss.AMBIGUOUS, id="two-patients"),
            pytest.param("PAT99999999999999999999.pdf", TokenMiss.INVALID, id="over-bigint"),
        ],
    )
    def test_does_not_route(self, name, miss):
        assert DEFAULT.route(name) == miss

    def test_compile_without_argument_is_the_default(self):
        assert DEFAULT.pattern.pattern == DEFAULT_PATTERN


class TestUserPatterns:
    def test_chart_number(self):
        rule = TokenRule.compile(CHART_EXAMPLE)
        assert rule.route("CHART-A1234 consent.pdf") == TokenRoute(None, "A1234", None)
        assert rule.route("_7_chart_B9.pdf") == TokenRoute(None, "B9", 7)
        assert rule.route("PAT18.pdf") == TokenMiss.NO_TOKEN

    def test_category_group_wins_over_the_prefix(self):
        rule = TokenRule.compile(r"^P(?P<patnum>\d+)(?:-C(?P<category>\w+))?$")
        assert rule.route("P18-C42.pdf") == TokenRoute(18, None, 42)
        assert rule.route("P18-CForms.pdf") == TokenRoute(18, None, "Forms")
        assert rule.route("_5_P18-C42.pdf") == TokenRoute(18, None, 42)
        assert rule.route("_5_P18.pdf") == TokenRoute(18, None, 5)
        assert rule.route("P18.pdf") == TokenRoute(18, None, None)

    def test_a_group_that_captures_no_number_is_invalid(self):
        rule = TokenRule.compile(r"id=(?P<patnum>\w+)")
        assert rule.route("id=abc.pdf") == TokenMiss.INVALID
        assert rule.route("id=0.pdf") == TokenMiss.INVALID
        assert rule.route("id=12.pdf") == TokenRoute(12, None, None)

    def test_an_overlong_chart_number_is_invalid(self):
        rule = TokenRule.compile(r"C(?P<chart>\w+)")
        assert rule.route("C" + "1" * 21 + ".pdf") == TokenMiss.INVALID
        assert rule.route("C" + "1" * 20 + ".pdf") == TokenRoute(None, "1" * 20, None)

    @pytest.mark.parametrize(
        ("pattern", "message"),
        [
            pytest.param(r"(?P<patnum>\d+", "not a valid regular expression", id="unbalanced"),
            pytest.param(r"PAT\d+", "needs a group (?P<patnum>", id="no-group"),
            pytest.param(r"(?P<category>\d+)", "names no patient", id="category-only"),
            pytest.param(r"(?P<pat_num>\d+)", "unknown group(s) pat_num", id="typo"),
        ],
    )
    def test_a_bad_pattern_says_why(self, pattern, message):
        with pytest.raises(TokenPatternError) as caught:
            TokenRule.compile(pattern)
        assert message in str(caught.value)
        assert isinstance(caught.value, ValueError)
