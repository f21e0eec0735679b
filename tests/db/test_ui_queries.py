"""``db.ui_queries``: what the front-desk page reads, on SQLite, MariaDB and Open Dental's
own tables: the latest documents, a patient's, and finding a patient by what a person types."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import text

from atoz_watcher.db import ui_queries
from atoz_watcher.db.ui_queries import DocumentLine
from tests.support.practice import open_dental_patient_columns
from tests.support.worlds import World


def _set(world: World, pat_num: int, **values: object) -> None:
    columns = ", ".join(f"{name} = :{name}" for name in values)
    with world.engine.begin() as conn:
        conn.execute(
            text(f"UPDATE patient SET {columns} WHERE PatNum = :p"), {**values, "p": pat_num}
        )


def test_latest_documents_newest_first_with_patient_and_category(world: World) -> None:
    xrays = world.add_category("X-Rays", order=1)
    smith = world.add_patient("Smith", "John", "SmithJohn1")
    jones = world.add_patient("Jones", "Ann", "JonesAnn2")
    first = world.add_document(
        smith, "pano.jpg", xrays, DateCreated=datetime(2024, 3, 1, 9, 30), ImgType=2
    )
    on_mount = world.add_document(jones, "bw.jpg", xrays, MountItemNum=7)
    gone_category = world.add_document(jones, "letter.pdf", xrays + 100)

    with world.engine.connect() as conn:
        lines = ui_queries.latest_documents(conn, limit=10)
        top_two = ui_queries.latest_documents(conn, limit=2)
        older = ui_queries.latest_documents(conn, limit=10, before_doc_num=gone_category)

    assert [line.doc_num for line in lines] == [gone_category, on_mount, first]
    assert lines[-1] == DocumentLine(
        doc_num=first,
        pat_num=smith,
        patient="Smith, John",
        category_num=xrays,
        category="X-Rays",
        file_name="pano.jpg",
        description="pano.jpg",
        created=datetime(2024, 3, 1, 9, 30),
        img_type=2,
        folder="SmithJohn1",
    )
    assert (lines[1].patient, lines[1].category, lines[1].folder) == (
        "Jones, Ann",
        "X-Rays",
        "JonesAnn2",
    )
    assert (lines[0].category_num, lines[0].category) == (xrays + 100, "")
    assert [line.doc_num for line in top_two] == [gone_category, on_mount]
    assert [line.doc_num for line in older] == [on_mount, first]


def test_documents_since_and_one_line(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    pat = world.add_patient("Smith", "John")
    numbers = [world.add_document(pat, f"f{i}.jpg", misc) for i in range(5)]

    with world.engine.connect() as conn:
        since = ui_queries.documents_since(conn, after_doc_num=numbers[1], limit=10)
        capped = ui_queries.documents_since(conn, after_doc_num=numbers[1], limit=2)
        none_newer = ui_queries.documents_since(conn, after_doc_num=numbers[-1], limit=10)
        one = ui_queries.document_line(conn, doc_num=numbers[2])
        missing = ui_queries.document_line(conn, doc_num=numbers[-1] + 1)

    assert [line.doc_num for line in since] == numbers[:1:-1]
    assert [line.doc_num for line in capped] == [numbers[4], numbers[3]]
    assert none_newer == []
    assert one is not None
    assert (one.doc_num, one.file_name, one.patient) == (numbers[2], "f2.jpg", "Smith, John")
    assert missing is None


def test_a_document_whose_patient_is_gone_is_still_listed(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    doc = world.add_document(9999, "orphan.jpg", misc)

    with world.engine.connect() as conn:
        (line,) = ui_queries.latest_documents(conn, limit=5)

    assert (line.doc_num, line.pat_num, line.patient, line.folder) == (doc, 9999, "", "")


def test_patient_documents_by_category_order_then_newest(world: World) -> None:
    photos = world.add_category("Photos", order=2)
    xrays = world.add_category("X-Rays", order=1)
    pat = world.add_patient("Smith", "John")
    other = world.add_patient("Jones", "Ann")
    photo_old = world.add_document(pat, "p1.jpg", photos)
    xray_old = world.add_document(pat, "x1.jpg", xrays)
    world.add_document(other, "elsewhere.jpg", xrays)
    photo_new = world.add_document(pat, "p2.jpg", photos)
    xray_new = world.add_document(pat, "x2.jpg", xrays)
    lost = world.add_document(pat, "lost.jpg", photos + 50)

    with world.engine.connect() as conn:
        whole = ui_queries.patient_documents(conn, pat_num=pat, limit=100)
        page_two = ui_queries.patient_documents(conn, pat_num=pat, limit=2, offset=2)

    expected = [xray_new, xray_old, photo_new, photo_old, lost]
    assert [line.doc_num for line in whole] == expected
    assert [line.doc_num for line in page_two] == expected[2:4]
    assert {line.pat_num for line in whole} == {pat}


# -- finding a patient ----------------------------------------------------------------------------

PATIENTS = (
    # LName, FName, ChartNumber, Birthdate, PatStatus
    ("Smith", "John", "A100", "1980-04-02", 0),
    ("Smith", "Joanna", "18", "1975-12-31", 0),
    ("Smithers", "Waylon", "", "1980-04-02", 0),
    ("Jones", "Smith", "B7", "0001-01-01", 4),
    ("Van Buren", "Martin", "VB1", "1990-01-05", 0),
    ("Van", "Buren", "", "1990-01-06", 0),
    ("S%ter", "Percent", "", "1960-01-01", 0),
    ("O'Brien", "Kate", "", "1970-07-07", 0),
)

# (query, the names found in order); "#n" is replaced by the n-th patient's PatNum.
CASES = (
    ("Smith", ["Smith, Joanna", "Smith, John", "Smithers, Waylon"]),
    ("smi", ["Smith, Joanna", "Smith, John", "Smithers, Waylon"]),
    ("  SMITH  ", ["Smith, Joanna", "Smith, John", "Smithers, Waylon"]),
    ("Smith, Jo", ["Smith, Joanna", "Smith, John"]),
    ("Smith,John", ["Smith, John"]),
    ("Smith Joa", ["Smith, Joanna"]),
    ("Van Buren", ["Van, Buren", "Van Buren, Martin"]),
    ("Van Buren, M", ["Van Buren, Martin"]),
    ("o'b", ["O'Brien, Kate"]),
    ("S%", ["S%ter, Percent"]),  # % is a letter here, not LIKE's wildcard
    ("S_ith", []),  # nor _
    ("Nobody", []),
    ("1980-04-02", ["Smith, John", "Smithers, Waylon"]),
    ("04/02/1980", ["Smith, John", "Smithers, Waylon"]),
    ("4/2/1980", ["Smith, John", "Smithers, Waylon"]),
    ("1980-02-30", []),  # no such day: a chart number, and none has it
    ("A100", ["Smith, John"]),
    ("a100 ", ["Smith, John"]),  # chart numbers compare as the database does (MariaDB: any case)
    ("VB1", ["Van Buren, Martin"]),
    ("Jones", ["Jones, Smith"]),  # deleted patients are shown
)


@pytest.fixture
def searchable(world: World) -> tuple[World, list[int]]:
    with world.engine.begin() as conn:
        open_dental_patient_columns(conn)
    pat_nums = []
    for lname, fname, chart, born, status in PATIENTS:
        pat = world.add_patient(lname, fname)
        _set(world, pat, ChartNumber=chart, Birthdate=born, PatStatus=status)
        pat_nums.append(pat)
    return world, pat_nums


def _names(world: World, query: str, limit: int = 20) -> list[str]:
    with world.engine.connect() as conn:
        return [hit.name for hit in ui_queries.find_patients(conn, query, limit=limit)]


def test_find_patients_by_each_form_of_query(searchable: tuple[World, list[int]]) -> None:
    world, _ = searchable
    case_sensitive = {"a100 "} if world.kind == "sqlite" else set()
    cases = [(query, names) for query, names in CASES if query not in case_sensitive]

    found = {query: _names(world, query) for query, _ in cases}

    assert found == dict(cases)


def test_find_patients_by_patnum_and_chart_number(searchable: tuple[World, list[int]]) -> None:
    world, pat_nums = searchable
    # A chart number that is another patient's PatNum: both found, the PatNum first.
    _set(world, pat_nums[7], ChartNumber=str(pat_nums[0]))
    with world.engine.connect() as conn:
        by_number = ui_queries.find_patients(conn, str(pat_nums[0]))
        by_hash = ui_queries.find_patients(conn, f"#{pat_nums[0]}")
        eighteen = ui_queries.find_patients(conn, "18")

    assert [hit.pat_num for hit in by_number] == [pat_nums[0], pat_nums[7]]
    assert by_hash == by_number
    assert by_number[0] == ui_queries.PatientHit(
        pat_num=pat_nums[0],
        name="Smith, John",
        chart_number="A100",
        birth_date=date(1980, 4, 2),
        status=0,
    )
    assert pat_nums[1] in [hit.pat_num for hit in eighteen]  # Joanna's chart number is "18"


def test_find_patients_shows_no_birth_date_for_open_dentals_none(
    searchable: tuple[World, list[int]],
) -> None:
    world, pat_nums = searchable
    with world.engine.connect() as conn:
        (jones,) = ui_queries.find_patients(conn, "Jones")

    assert (jones.pat_num, jones.birth_date, jones.status) == (pat_nums[3], None, 4)


def test_find_patients_stops_at_the_limit(world: World) -> None:
    for i in range(30):
        world.add_patient(f"Sm{i:02d}", "X")

    assert _names(world, "Sm", limit=5) == [f"Sm{i:02d}, X" for i in range(5)]
    assert len(_names(world, "S")) == 20
    assert _names(world, "Sm", limit=0) == []
    assert _names(world, "   ") == []


def test_without_chart_number_or_birth_date_columns(bare_world: World) -> None:
    """atoz-watcher's own patient table has neither: names and PatNums still work."""
    world = bare_world
    pat = world.add_patient("Smith", "John")

    with world.engine.connect() as conn:
        (by_number,) = ui_queries.find_patients(conn, str(pat))
        by_date = ui_queries.find_patients(conn, "1980-04-02")
        by_chart = ui_queries.find_patients(conn, "A100")
        by_name = ui_queries.find_patients(conn, "smith")

    assert by_number == ui_queries.PatientHit(pat, "Smith, John", "", None, 0)
    assert by_date == []
    assert by_chart == []
    assert [hit.pat_num for hit in by_name] == [pat]
