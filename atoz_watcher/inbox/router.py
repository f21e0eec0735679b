"""Which patient (and category) a file dropped in an inbox goes to: the first rule that decides.

1. **Cover sheets** (PDF, TIFF, images): the pages after a cover sheet, up to the next one, go
   to its patient; cover pages are dropped. Pages before the first cover sheet are a part of
   their own, routed by the file name's token when it has one, else unmatched
   (``before-first-cover``): never dropped, never guessed. A page carrying codes of two
   patients opens a part nobody routes (``conflicting-codes``). A scan that is only cover
   sheets (a single image of one included) is ``empty-cover-sheet``.
2. **A token in the file name** (``rules.tokens``): a PatNum, or a ChartNumber looked up.
3. **DICOM**: the PatientID, matched against PatNum or patient.ChartNumber.
4. Otherwise unmatched (``no-route``).

Whatever the rule, a patient that does not exist or is deleted (PatStatus 4) gets nothing.
The category is the code's or token's, else the name's ``_##_`` prefix when it names an
image category (as in the patient folders), else the inbox folder's default, else None:
Open Dental's default, the first visible image category, which the writer picks.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sqlalchemy import Connection, Engine

from atoz_watcher.config.sections import InboxSettings
from atoz_watcher.db import queries
from atoz_watcher.db.models import IMG_TYPE_DOCUMENT, IMG_TYPE_RADIOGRAPH
from atoz_watcher.documents.checks import PAT_STATUS_DELETED
from atoz_watcher.imaging.codes import scan_codes
from atoz_watcher.imaging.dicom import NO_WINDOWING, is_dicom, read_patient_id, read_windowing
from atoz_watcher.imaging.pages import ScanKind, UnreadableScanError, scan_kind
from atoz_watcher.inbox.outcomes import Reason, Rule
from atoz_watcher.rules.cover import CoverCode, plan_parts
from atoz_watcher.rules.naming import ImageCategory, parse_prefix
from atoz_watcher.rules.tokens import TokenMiss, TokenRoute, TokenRule

_HEAD_BYTES: Final = 1024
_BIGINT_MAX: Final = 2**63 - 1
_MAX_EXTENSION: Final = 10
_KIND_EXTENSION: Final = {ScanKind.PDF: ".pdf", ScanKind.TIFF: ".tif"}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a part is filed: the patient, the category (None: the first visible one) and the
    row's image settings."""

    pat_num: int
    category: int | None
    img_type: int = IMG_TYPE_DOCUMENT
    extension: str = ""
    print_heading: bool = False
    windowing: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class PartPlan:
    """Pages (0-based) of the file, or None for the whole file; filed to ``target``, or
    unmatched for ``reason``."""

    pages: tuple[int, ...] | None
    target: Target | None = None
    reason: Reason | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """How a file is routed: by ``rule`` (None: unmatched as a whole), in ``parts``."""

    rule: Rule | None
    parts: tuple[PartPlan, ...]
    empty_covers: tuple[int, ...] = field(default=())

    @property
    def unmatched(self) -> PartPlan | None:
        """The whole file's reason when nothing in it is filed."""
        if self.rule is None or all(part.target is None for part in self.parts):
            return self.parts[0]
        return None


class _Miss(Exception):  # noqa: N818 - a routing outcome, raised to leave the lookups early
    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.detail = detail


def extension_of(name: str) -> str:
    """The name's extension (``.pdf``), when it is a dot and 1-10 letters or digits."""
    stem, dot, extension = name.rpartition(".")
    if dot and stem and 0 < len(extension) <= _MAX_EXTENSION and extension.isalnum():
        return f".{extension}" if extension.isascii() else ""
    return ""


def resolve_category(value: int | str, categories: Collection[ImageCategory]) -> int | _Miss:
    """A DefNum of an image category (hidden ones too, as Open Dental's prefix), or a name of a
    visible one (case and outer spaces ignored)."""
    if isinstance(value, int):
        if any(c.def_num == value for c in categories):
            return value
        return _Miss(Reason.UNKNOWN_CATEGORY, f"DefNum {value} is not an image category")
    wanted = value.strip().casefold()
    found = [c for c in categories if not c.is_hidden and c.name.strip().casefold() == wanted]
    if not found:
        return _Miss(Reason.UNKNOWN_CATEGORY, "no visible image category of that name")
    if len(found) > 1:
        return _Miss(Reason.AMBIGUOUS_CATEGORY, "several visible image categories of that name")
    return found[0].def_num


class Router:
    """Decides a file's route; reads the database and the file, changes nothing."""

    def __init__(self, engine: Engine, settings: InboxSettings) -> None:
        self._engine = engine
        self._settings = settings
        self._tokens: TokenRule = settings.token_rule

    def route(self, path: Path, *, name: str, default: int | str | None) -> Decision:
        """The route of the file at ``path``, which arrived as ``name`` in an inbox whose
        default category is ``default``."""
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
        dicom = is_dicom(head)
        with self._engine.connect() as conn:
            if self._settings.cover_sheets and not dicom:
                decision = self._by_cover_sheets(conn, path, name=name, default=default)
                if decision is not None:
                    return decision
            for rule in (self._by_token, self._by_dicom):
                try:
                    target = rule(conn, path, name=name, default=default, dicom=dicom)
                except _Miss as miss:
                    return _unmatched(miss.reason, miss.detail)
                if target is not None:
                    return Decision(target[0], (PartPlan(None, target=target[1]),))
        return _unmatched(Reason.NO_ROUTE)

    def assigned(
        self, path: Path, *, name: str, pat_num: int, category: int | str | None
    ) -> Target:
        """The target of a file routed by hand; ``_Miss`` (an InboxError for the caller)."""
        with path.open("rb") as handle:
            dicom = is_dicom(handle.read(_HEAD_BYTES))
        with self._engine.connect() as conn:
            return self._target(
                conn,
                path,
                name=name,
                pat_num=pat_num,
                category=category,
                default=None,
                dicom=dicom,
            )

    # -- the rules -------------------------------------------------------------------------------

    def _by_cover_sheets(
        self, conn: Connection, path: Path, *, name: str, default: int | str | None
    ) -> Decision | None:
        kind = scan_kind(path)
        try:
            codes = scan_codes(path)
        except UnreadableScanError as exc:
            if kind is ScanKind.IMAGE:
                return None  # not an image at all (a .docx, a text): the other rules decide
            return _unmatched(Reason.UNREADABLE_SCAN, str(exc))
        plan = plan_parts(codes)
        if not plan.has_covers:
            return None
        parts = [
            self._cover_part(
                conn,
                path,
                name=name,
                default=default,
                code=p.code,
                pages=p.pages,
                conflict=p.cover is not None,
            )
            for p in plan.parts
        ]
        if not parts:
            return _unmatched(Reason.EMPTY_COVER_SHEET, "the scan holds only cover sheets")
        return Decision(Rule.COVER_SHEET, tuple(parts), plan.empty_covers)

    def _cover_part(
        self,
        conn: Connection,
        path: Path,
        *,
        name: str,
        default: int | str | None,
        code: CoverCode | None,
        pages: tuple[int, ...],
        conflict: bool,
    ) -> PartPlan:
        try:
            if code is not None:
                target = self._target(
                    conn,
                    path,
                    name=name,
                    pat_num=code.pat_num,
                    category=code.category,
                    default=default,
                    dicom=False,
                )
                return PartPlan(pages, target=target)
            if conflict:
                return PartPlan(pages, reason=Reason.CONFLICTING_CODES)
            routed = self._by_token(conn, path, name=name, default=default, dicom=False)
        except _Miss as miss:
            return PartPlan(pages, reason=miss.reason, detail=miss.detail)
        if routed is None:
            return PartPlan(pages, reason=Reason.BEFORE_FIRST_COVER)
        return PartPlan(pages, target=routed[1])

    def _by_token(
        self, conn: Connection, path: Path, *, name: str, default: int | str | None, dicom: bool
    ) -> tuple[Rule, Target] | None:
        if not self._settings.tokens:
            return None
        route = self._tokens.route(name)
        if route is TokenMiss.NO_TOKEN:
            return None
        if route is TokenMiss.AMBIGUOUS:
            raise _Miss(Reason.AMBIGUOUS_TOKEN)
        if not isinstance(route, TokenRoute):
            raise _Miss(Reason.INVALID_TOKEN)
        pat_num = route.pat_num
        if route.chart_number is not None:
            by_chart = self._chart(conn, route.chart_number)
            if pat_num is not None and by_chart != pat_num:
                raise _Miss(Reason.AMBIGUOUS_TOKEN, "the PatNum and the ChartNumber disagree")
            pat_num = by_chart
        if pat_num is None:  # pragma: no cover - TokenRule never routes to nobody
            raise _Miss(Reason.INVALID_TOKEN)
        category = route.category
        prefix = parse_prefix(name)
        if prefix is not None and category == prefix.number:
            category = None  # the prefix's number: the lenient patient-folder rule in _target
        target = self._target(
            conn,
            path,
            name=name,
            pat_num=pat_num,
            category=category,
            default=default,
            dicom=dicom,
        )
        return Rule.TOKEN, target

    def _by_dicom(
        self, conn: Connection, path: Path, *, name: str, default: int | str | None, dicom: bool
    ) -> tuple[Rule, Target] | None:
        if not (self._settings.dicom and dicom):
            return None
        try:
            patient_id = read_patient_id(path)
        except ValueError as exc:
            raise _Miss(Reason.UNREADABLE_DICOM, str(exc)) from None
        if patient_id is None:
            return None
        if self._settings.dicom_match == "chart":
            pat_num = self._chart(conn, patient_id)
        else:
            if not (patient_id.isascii() and patient_id.isdigit()) or patient_id.startswith("0"):
                raise _Miss(Reason.BAD_DICOM_ID)
            pat_num = int(patient_id)
            if pat_num > _BIGINT_MAX:
                raise _Miss(Reason.BAD_DICOM_ID)
        target = self._target(
            conn, path, name=name, pat_num=pat_num, category=None, default=default, dicom=True
        )
        return Rule.DICOM, target

    # -- lookups ---------------------------------------------------------------------------------

    @staticmethod
    def _chart(conn: Connection, chart_number: str) -> int:
        found = queries.patients_by_chart(conn, chart_number=chart_number)
        if found is None:
            raise _Miss(Reason.NO_CHART_NUMBERS)
        if not found:
            raise _Miss(Reason.UNKNOWN_CHART)
        if len(found) > 1:
            raise _Miss(Reason.AMBIGUOUS_CHART)
        return found[0]

    def _target(
        self,
        conn: Connection,
        path: Path,
        *,
        name: str,
        pat_num: int,
        category: int | str | None,
        default: int | str | None,
        dicom: bool,
    ) -> Target:
        status = queries.pat_status(conn, pat_num=pat_num)
        if status is None:
            raise _Miss(Reason.UNKNOWN_PATIENT)
        if status == PAT_STATUS_DELETED:
            raise _Miss(Reason.DELETED_PATIENT)
        categories = queries.image_categories(conn)
        def_num = _category(category, name=name, default=default, categories=categories)
        radiograph = dicom or name.lower().endswith(".dcm")
        prefix = parse_prefix(name)
        extension = extension_of(name if prefix is None else prefix.rest)
        if not radiograph:
            if not extension:
                extension = _KIND_EXTENSION.get(scan_kind(path), "")
            return Target(pat_num, def_num, IMG_TYPE_DOCUMENT, extension)
        window = NO_WINDOWING
        if dicom:
            try:
                window = read_windowing(path)
            except ValueError:
                window = NO_WINDOWING
        return Target(
            pat_num,
            def_num,
            IMG_TYPE_RADIOGRAPH,
            ".dcm",
            print_heading=True,
            windowing=(window.minimum, window.maximum),
        )


def _category(
    explicit: int | str | None,
    *,
    name: str,
    default: int | str | None,
    categories: Sequence[ImageCategory],
) -> int | None:
    """The code's or token's category, else the ``_##_`` prefix's when it names an image
    category, else the inbox's default, else None (the first visible)."""
    if explicit is not None:
        found = resolve_category(explicit, categories)
        if isinstance(found, _Miss):
            raise found
        return found
    prefix = parse_prefix(name)
    if prefix is not None and any(c.def_num == prefix.number for c in categories):
        return prefix.number
    if default is not None:
        found = resolve_category(default, categories)
        if isinstance(found, _Miss):
            raise _Miss(found.reason, f"the inbox's category: {found.detail}")
        return found
    return None


def _unmatched(reason: Reason, detail: str = "") -> Decision:
    return Decision(None, (PartPlan(None, reason=reason, detail=detail),))


# What ``assigned`` raises when a hand-routed file cannot be filed: its reason and detail.
AssignMiss = _Miss
