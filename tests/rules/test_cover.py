"""The cover sheet's payload (encode, decode, check value) and how cover sheets part a scan."""

from __future__ import annotations

import pytest

from atoz_watcher.rules.cover import (
    CHECK_CHARS,
    PREFIX,
    CoverCode,
    Part,
    Plan,
    decode,
    encode,
    plan_parts,
)

BIGINT_MAX = 2**63 - 1


class TestRoundTrip:
    @pytest.mark.parametrize(
        ("pat_num", "category"),
        [
            pytest.param(18, None, id="patient-only"),
            pytest.param(1, 5, id="def-num"),
            pytest.param(BIGINT_MAX, BIGINT_MAX, id="bigint-max"),
            pytest.param(18, "X-Rays", id="name"),
            pytest.param(18, "Forms: signed", id="name-with-colon"),
            pytest.param(18, "Röntgen", id="name-not-ascii"),
            pytest.param(18, "2024 forms", id="name-starting-with-digits"),
        ],
    )
    def test_decode_reads_what_encode_wrote(self, pat_num, category):
        text = encode(pat_num, category)
        assert text.startswith(f"{PREFIX}:{pat_num}:")
        assert decode(text) == CoverCode(pat_num, category)

    def test_the_payload_is_compact(self):
        assert encode(18, 5) == f"ATZ1:18:5:{encode(18, 5)[-CHECK_CHARS:]}"
        assert len(encode(123456, 42)) <= 24

    def test_each_patient_and_category_has_its_own_check(self):
        checks = {encode(p, c)[-CHECK_CHARS:] for p in range(1, 50) for c in (None, 1, 2, "A")}
        assert len(checks) == 49 * 4


class TestEncodeRefuses:
    @pytest.mark.parametrize(
        ("pat_num", "category", "error"),
        [
            pytest.param(0, None, ValueError, id="patnum-0"),
            pytest.param(-3, None, ValueError, id="patnum-negative"),
            pytest.param(BIGINT_MAX + 1, None, ValueError, id="patnum-too-large"),
            pytest.param(True, None, ValueError, id="patnum-bool"),
            pytest.param(18, 0, ValueError, id="defnum-0"),
            pytest.param(18, True, TypeError, id="category-bool"),
            pytest.param(18, "", ValueError, id="name-empty"),
            pytest.param(18, " Forms", ValueError, id="name-leading-space"),
            pytest.param(18, "123", ValueError, id="name-all-digits"),
            pytest.param(18, "a\nb", ValueError, id="name-control-char"),
            pytest.param(18, "a" * 256, ValueError, id="name-too-long"),
        ],
    )
    def test_values_that_cannot_be_a_cover_code(self, pat_num, category, error):
        with pytest.raises(error):
            encode(pat_num, category)


def _replace(text: str, index: int) -> str:
    """``text`` with the character at ``index`` changed to another of the same kind."""
    old = text[index]
    new = "7" if old != "7" else "3"
    if old.isalpha():
        new = "Q" if old != "Q" else "R"
    if old == ":":
        new = ";"
    return text[:index] + new + text[index + 1 :]


GOOD = encode(18, 5)
GOOD_NAME = encode(18, "Forms")


class TestDecodeRefuses:
    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="empty"),
            pytest.param("https://example.com/ATZ1:18:ABCDEFGH", id="url"),
            pytest.param(
                "BEGIN:VCARD\nVERSION:3.0\nFN:Jane Doe\nTEL:555-0100\nEND:VCARD", id="vcard"
            ),
            pytest.param("WIFI:S:office;T:WPA;P:secret;;", id="wifi"),
            pytest.param("0123456789012", id="ean-13"),
            pytest.param("PAGE-0007", id="page-tag"),
            pytest.param("hello world", id="random-text"),
            pytest.param("ATZ1:18:5:AAAAAAAA", id="wrong-check"),
            pytest.param("ATZ1:18:5", id="no-check"),
            pytest.param(GOOD[:-1], id="truncated-by-one"),
            pytest.param(GOOD[:10], id="truncated-half"),
            pytest.param(GOOD + "A", id="one-char-too-many"),
            pytest.param(GOOD.lower(), id="lower-case"),
            pytest.param(" " + GOOD, id="leading-space"),
            pytest.param(GOOD + "\n", id="trailing-newline"),
            pytest.param(GOOD.replace("ATZ1", "ATZ2"), id="other-version"),
            pytest.param(GOOD.replace(":18:", ":018:"), id="leading-zero"),
            pytest.param("XYZ1:18:" + encode(18)[-CHECK_CHARS:], id="other-prefix"),
        ],
    )
    def test_foreign_or_damaged_text_is_not_ours(self, text):
        assert decode(text) is None

    @pytest.mark.parametrize("text", [GOOD, GOOD_NAME, encode(987654321)])
    def test_any_one_changed_character_fails(self, text):
        assert decode(text) is not None
        for index in range(len(text)):
            assert decode(_replace(text, index)) is None, (text, index)

    @pytest.mark.parametrize("text", [GOOD, GOOD_NAME])
    def test_any_truncation_fails(self, text):
        for end in range(len(text)):
            assert decode(text[:end]) is None, end

    def test_a_checked_body_that_is_not_canonical_is_refused(self):
        # A body we never write, even with a check that matches it (a forged or buggy code).
        from atoz_watcher.rules.cover import _check  # noqa: PLC0415

        for body in ("ATZ1:018", "ATZ1:0", "ATZ1:x", "ATZ1:18: Forms", "ATZ1:18:", "ATZ1"):
            assert decode(f"{body}:{_check(body)}") is None, body


def _codes(*pages: int | None) -> list[set[CoverCode]]:
    return [set() if p is None else {CoverCode(p)} for p in pages]


A, B, C = CoverCode(1), CoverCode(2), CoverCode(3)


class TestPlanParts:
    def test_three_patients_in_twelve_pages(self):
        plan = plan_parts(_codes(1, None, None, None, 2, None, None, 3, None, None, None, None))
        assert plan == Plan(
            parts=(
                Part(A, (1, 2, 3), cover=0),
                Part(B, (5, 6), cover=4),
                Part(C, (8, 9, 10, 11), cover=7),
            ),
            empty_covers=(),
            conflicts=(),
        )
        assert plan.has_covers

    def test_no_cover_sheet_is_one_unrouted_part(self):
        plan = plan_parts(_codes(None, None, None))
        assert plan.parts == (Part(None, (0, 1, 2), cover=None),)
        assert not plan.has_covers

    def test_pages_before_the_first_cover_sheet_are_an_unrouted_part(self):
        plan = plan_parts(_codes(None, None, 1, None))
        assert plan.parts == (Part(None, (0, 1), cover=None), Part(A, (3,), cover=2))

    def test_a_single_page_that_is_a_cover_sheet_is_empty(self):
        plan = plan_parts(_codes(1))
        assert plan == Plan(parts=(), empty_covers=(0,), conflicts=())
        assert plan.has_covers

    def test_two_cover_sheets_in_a_row_drop_an_empty_part(self):
        plan = plan_parts(_codes(1, 2, None, 3))
        assert plan.parts == (Part(B, (2,), cover=1),)
        assert plan.empty_covers == (0, 3)

    def test_the_same_code_twice_on_a_page_is_one_cover_sheet(self):
        plan = plan_parts([{A, CoverCode(1)}, set()])
        assert plan.parts == (Part(A, (1,), cover=0),)

    def test_a_page_with_codes_for_two_patients_routes_nothing(self):
        plan = plan_parts([{A}, set(), {A, B}, set(), set(), {C}, set()])
        assert plan.parts == (
            Part(A, (1,), cover=0),
            Part(None, (3, 4), cover=2),
            Part(C, (6,), cover=5),
        )
        assert plan.conflicts == (2,)
        assert plan.empty_covers == ()

    def test_empty_scan(self):
        assert plan_parts([]) == Plan(parts=(), empty_covers=(), conflicts=())

    def test_every_page_is_in_one_part_or_a_cover(self):
        pages = _codes(None, 1, None, 2, 2, None, None, 1, None)
        plan = plan_parts(pages)
        used = [p for part in plan.parts for p in part.pages]
        covers = [i for i, found in enumerate(pages) if found]
        assert sorted(used + covers) == list(range(len(pages)))
        assert used == sorted(used)
