"""Which names are plain, which Open Dental imports, the ``_##_`` prefix, ``x`` collisions,
image categories."""

from __future__ import annotations

import os
from itertools import islice

import pytest

from atoz_watcher.rules.naming import (
    ImageCategory,
    Prefix,
    Skip,
    category_for,
    collision_free_name,
    final_name_reason,
    first_visible,
    parse_prefix,
    plain,
    skip_reason,
    x_prefixed,
)

BAD_UTF8 = os.fsdecode(b"bad\xff.jpg")  # how os.listdir() hands over a name that is not UTF-8
BIGINT_MAX = 9_223_372_036_854_775_807


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.png", True),
        ("x..y.png", True),
        ("..", False),
        (".", False),
        ("", False),
        ("a/b.png", False),
        ("a\\b.png", False),
        ("/etc/passwd", False),
        ("a\0b", False),
    ],
)
def test_plain_file_names(name: str, expected: bool) -> None:
    assert plain(name) is expected


class TestSkipReason:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param(".hidden", Skip.HIDDEN, id="dot-file"),
            pytest.param(".x.jpg", Skip.HIDDEN, id="dot-image"),
            pytest.param("Thumbs.db", Skip.THUMBS_DB, id="thumbs-db"),
            pytest.param("thumbs.db", Skip.THUMBS_DB, id="thumbs-db-lower"),
            pytest.param("THUMBS.DB", Skip.THUMBS_DB, id="thumbs-db-upper"),
            pytest.param("myThumbs.DB", Skip.THUMBS_DB, id="ends-with-thumbs-db"),
            pytest.param(BAD_UTF8, Skip.UNDECODABLE, id="not-utf8"),
            pytest.param("a" * 256, Skip.TOO_LONG, id="256-chars"),
            pytest.param("a" * 251 + ".jpg", None, id="255-chars"),
            pytest.param("x.jpg", None, id="plain"),
            pytest.param("scan 1.PDF", None, id="space-upper-ext"),
            pytest.param("_12_x.jpg", None, id="prefixed"),
            pytest.param("a.hidden", None, id="dot-inside"),
            pytest.param("thumbs.db.jpg", None, id="thumbs-db-not-at-end"),
            pytest.param("thumbs.jpg", None, id="thumbs-jpg"),
            pytest.param("García.jpg", None, id="accented"),
            pytest.param("王小明.png", None, id="cjk"),
        ],
    )
    def test_skip_reason(self, name: str, expected: Skip | None) -> None:
        assert skip_reason(name) == expected


class TestParsePrefix:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param("_135_x.jpg", Prefix(135, "x.jpg"), id="number"),
            pytest.param("__x.jpg", Prefix(0, "x.jpg"), id="empty-number"),
            pytest.param("_0_x.jpg", Prefix(0, "x.jpg"), id="zero"),
            pytest.param("_007_x.jpg", Prefix(7, "x.jpg"), id="leading-zeros"),
            pytest.param("_12_", Prefix(12, ""), id="nothing-after"),
            pytest.param("__", Prefix(0, ""), id="only-underscores"),
            pytest.param("_12_x_3_.jpg", Prefix(12, "x_3_.jpg"), id="first-prefix-only"),
            pytest.param("_12__x.jpg", Prefix(12, "_x.jpg"), id="one-prefix-cut"),
            pytest.param("_5_.jpg", Prefix(5, ".jpg"), id="hidden-after"),
            pytest.param(f"_{BIGINT_MAX}_x.jpg", Prefix(BIGINT_MAX, "x.jpg"), id="bigint-max"),
            pytest.param(f"_{BIGINT_MAX + 1}_x.jpg", Prefix(0, "x.jpg"), id="bigint-max-plus-1"),
            pytest.param("_99999999999999999999_x.jpg", Prefix(0, "x.jpg"), id="huge"),
            pytest.param("x_12_.jpg", None, id="not-at-start"),
            pytest.param("_12x_.jpg", None, id="not-digits"),
            pytest.param("_12.jpg", None, id="no-closing-underscore"),
            pytest.param("_-1_x.jpg", None, id="negative"),
            pytest.param("_+1_x.jpg", None, id="plus-sign"),
            pytest.param("_ 1_x.jpg", None, id="space"),
            pytest.param("_", None, id="lone-underscore"),
            pytest.param("x.jpg", None, id="plain"),
            pytest.param("", None, id="empty"),
            # Only ASCII digits make a prefix (the module matches with re.ASCII).
            pytest.param("_\u0663_x.jpg", None, id="arabic-indic-digit"),
            pytest.param("_\uff11\uff12_x.jpg", None, id="fullwidth-digits"),
        ],
    )
    def test_parse_prefix(self, name: str, expected: Prefix | None) -> None:
        assert parse_prefix(name) == expected


class TestFinalNameReason:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param("", Skip.EMPTY_AFTER_PREFIX, id="empty"),
            pytest.param(".jpg", Skip.HIDDEN_AFTER_PREFIX, id="dot-ext"),
            pytest.param(".hidden", Skip.HIDDEN_AFTER_PREFIX, id="dot-file"),
            pytest.param("Thumbs.db", Skip.THUMBS_DB, id="thumbs-db"),
            pytest.param("mythumbs.DB", Skip.THUMBS_DB, id="ends-with-thumbs-db"),
            pytest.param(BAD_UTF8, Skip.UNDECODABLE, id="not-utf8"),
            pytest.param("a" * 256, Skip.TOO_LONG, id="256-chars"),
            pytest.param("a" * 255, None, id="255-chars"),
            pytest.param("x.jpg", None, id="plain"),
            pytest.param("_3_x.jpg", None, id="second-prefix-kept"),
        ],
    )
    def test_final_name_reason(self, name: str, expected: Skip | None) -> None:
        assert final_name_reason(name) == expected


NAME_254 = "a" * 250 + ".jpg"


class TestCollisionFreeName:
    @pytest.mark.parametrize(
        ("name", "taken", "expected"),
        [
            pytest.param("x.jpg", set(), "x.jpg", id="free"),
            pytest.param("x.jpg", {"x.jpg"}, "xx.jpg", id="one-x"),
            pytest.param("x.jpg", {"x.jpg", "xx.jpg"}, "xxx.jpg", id="two-x"),
            pytest.param("a.jpg", {"a.jpg", "xa.jpg", "xxa.jpg"}, "xxxa.jpg", id="three-x"),
            pytest.param("x.jpg", {"xx.jpg"}, "x.jpg", id="only-x-version-taken"),
            pytest.param("a.jpg", {"xa.jpg", "xxa.jpg"}, "a.jpg", id="original-free"),
            pytest.param("X.jpg", {"x.jpg"}, "X.jpg", id="case-sensitive"),
            pytest.param("照片.jpg", {"照片.jpg"}, "x照片.jpg", id="non-ascii"),
            pytest.param(NAME_254, {NAME_254}, "x" + NAME_254, id="grows-to-255"),
            pytest.param(NAME_254, {NAME_254, "x" + NAME_254}, None, id="would-be-256"),
            pytest.param("a" * 255, {"a" * 255}, None, id="255-taken"),
        ],
    )
    def test_collision_free_name(self, name: str, taken: set[str], expected: str | None) -> None:
        assert collision_free_name(name, taken.__contains__) == expected

    def test_asks_for_each_candidate_in_order(self) -> None:
        asked: list[str] = []

        def taken(name: str) -> bool:
            asked.append(name)
            return len(asked) < 3

        assert collision_free_name("x.jpg", taken) == "xxx.jpg"
        assert asked == ["x.jpg", "xx.jpg", "xxx.jpg"]

    def test_x_prefixed_adds_one_x_at_a_time(self) -> None:
        # The name as it is first, then one more x at a time, without end: the callers stop.
        assert list(islice(x_prefixed("a.jpg"), 4)) == ["a.jpg", "xa.jpg", "xxa.jpg", "xxxa.jpg"]


def cat(def_num: int, item_order: int, *, hidden: bool = False) -> ImageCategory:
    return ImageCategory(
        def_num=def_num, item_order=item_order, is_hidden=hidden, name=f"Category {def_num}"
    )


# ItemOrder decides the default, not DefNum or list order: 12 (order 1) comes first.
PHOTOS = cat(10, 2)
OLD = cat(11, 0, hidden=True)
XRAYS = cat(12, 1)
DOCS = cat(13, 3)
STANDARD = (PHOTOS, OLD, XRAYS, DOCS)
ONLY_HIDDEN = (cat(20, 0, hidden=True), cat(21, 1, hidden=True))


class TestFirstVisible:
    @pytest.mark.parametrize(
        ("categories", "expected"),
        [
            pytest.param(STANDARD, XRAYS, id="lowest-item-order"),
            pytest.param(tuple(reversed(STANDARD)), XRAYS, id="list-order-irrelevant"),
            pytest.param((cat(20, 1), cat(15, 1)), cat(15, 1), id="tie-lower-defnum"),
            pytest.param((cat(15, 1), cat(20, 1)), cat(15, 1), id="tie-lower-defnum-first"),
            pytest.param((cat(5, 0, hidden=True), cat(6, 9)), cat(6, 9), id="hidden-skipped"),
            pytest.param(ONLY_HIDDEN, None, id="only-hidden"),
            pytest.param((), None, id="none"),
        ],
    )
    def test_first_visible(
        self, categories: tuple[ImageCategory, ...], expected: ImageCategory | None
    ) -> None:
        assert first_visible(categories) == expected


class TestCategoryFor:
    @pytest.mark.parametrize(
        ("number", "categories", "expected"),
        [
            pytest.param(10, STANDARD, 10, id="visible-selected"),
            pytest.param(13, STANDARD, 13, id="other-visible-selected"),
            pytest.param(11, STANDARD, 11, id="hidden-selected"),
            pytest.param(0, STANDARD, 12, id="zero-first-visible"),
            pytest.param(None, STANDARD, 12, id="none-first-visible"),
            pytest.param(999, STANDARD, 12, id="unknown-first-visible"),
            pytest.param(-1, STANDARD, 12, id="negative-first-visible"),
            pytest.param(0, (cat(20, 1), cat(15, 1)), 15, id="tie-lower-defnum"),
            pytest.param(0, (), None, id="no-category"),
            pytest.param(5, (), None, id="no-category-number"),
            pytest.param(0, ONLY_HIDDEN, None, id="only-hidden-zero"),
            pytest.param(999, ONLY_HIDDEN, None, id="only-hidden-unknown"),
            pytest.param(21, ONLY_HIDDEN, 21, id="only-hidden-selected"),
        ],
    )
    def test_category_for(
        self, number: int | None, categories: tuple[ImageCategory, ...], expected: int | None
    ) -> None:
        assert category_for(number, categories) == expected
