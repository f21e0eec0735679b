"""``atoz-watcher check``: real databases (SQLite, MariaDB), real folders, a fake /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from atoz_watcher.app.check import (
    CheckResult,
    check_inotify,
    check_state_dir,
    count_folders,
    describe_error,
    format_results,
    run_checks,
    suggested_max_watches,
    watches_needed,
)
from atoz_watcher.config.sections import WatcherSettings
from atoz_watcher.config.settings import Settings
from atoz_watcher.db.engine import make_engine
from tests.support.leaks import SECRETS
from tests.support.mariadb import mariadb_database
from tests.support.worlds import World

NAMES = [
    "database",
    "tables",
    "image categories",
    "A-to-Z root",
    "A-to-Z root group",
    "links in the A-to-Z tree",
    "filesystem",
    "inotify watches",
    "inotify instances",
    "state directory",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic-settings reads os.environ: no ATOZ_ variable of the caller may leak in."""
    for key in list(os.environ):
        if key.upper().startswith("ATOZ_"):
            monkeypatch.delenv(key)


def fake_proc(directory: Path, *, watches: int | str, instances: int | str = 128) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "max_user_watches").write_text(f"{watches}\n", encoding="ascii")
    (directory / "max_user_instances").write_text(f"{instances}\n", encoding="ascii")
    return directory


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """Generous limits, so results do not depend on the machine running the tests."""
    return fake_proc(tmp_path / "proc", watches=524_288)


def settings_for(world: World, *, mode: str = "auto", root: Path | None = None) -> Settings:
    # As a practice's A-to-Z root is: its group (the share's) may write, new folders keep it.
    world.root.chmod(0o2775)
    return Settings(
        atoz_path=root if root is not None else world.root,
        database_url=world.url,
        state_dir=world.state,
        watcher=WatcherSettings(mode=mode),
    )


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    assert [result.name for result in results] == NAMES
    return {result.name: result for result in results}


def failed(results: list[CheckResult]) -> set[str]:
    return {result.name for result in results if not result.ok}


def make_folders(root: Path, count: int) -> None:
    """``count`` folders below ``root`` (root itself not included): letters and patients."""
    for i in range(count):
        if i % 5 == 0:
            letter = root / chr(ord("A") + i // 5)
            letter.mkdir(parents=True)
        else:
            (letter / f"Patient{i}").mkdir()


class TestHealthyWorld:
    def test_everything_ok(self, bare_world: World, proc: Path) -> None:
        bare_world.add_category("X-Rays", order=0)
        make_folders(bare_world.root, 10)

        results = run_checks(settings_for(bare_world), bare_world.engine, proc=proc)

        checks = by_name(results)
        assert not failed(results), format_results(results)
        assert "***" not in checks["database"].detail
        assert "1 visible: X-Rays" in checks["image categories"].detail
        assert "2 letter folders" in checks["A-to-Z root"].detail
        assert "11 folders to watch" in checks["inotify watches"].detail
        assert "524288" in checks["inotify watches"].detail
        assert "is 128" in checks["inotify instances"].detail

    def test_with_the_real_proc(self, bare_world: World) -> None:
        bare_world.add_category("X-Rays", order=0)
        limit = Path("/proc/sys/fs/inotify/max_user_watches")
        if not limit.exists():
            pytest.skip("no /proc/sys/fs/inotify on this machine")

        checks = by_name(run_checks(settings_for(bare_world), bare_world.engine))

        value = limit.read_text(encoding="ascii").strip()
        assert f"max_user_watches is {value}" in checks["inotify watches"].detail

    def test_categories_listed_in_order_hidden_ones_left_out(
        self, bare_world: World, proc: Path
    ) -> None:
        bare_world.add_category("Photos", order=2)
        bare_world.add_category("Old", order=0, hidden=True)
        bare_world.add_category("X-Rays", order=1)

        checks = by_name(run_checks(settings_for(bare_world), bare_world.engine, proc=proc))

        assert checks["image categories"].ok
        assert checks["image categories"].detail == "2 visible: X-Rays, Photos"


class TestDatabase:
    def test_missing_tables(self, bare_world: World, proc: Path) -> None:
        with bare_world.engine.begin() as conn:
            for table in ("document", "mountitem", "mount"):
                conn.execute(text(f"DROP TABLE {table}"))

        results = run_checks(settings_for(bare_world), bare_world.engine, proc=proc)

        checks = by_name(results)
        assert failed(results) == {"tables", "image categories"}
        assert "missing document" in checks["tables"].detail
        assert "init-db" in checks["tables"].detail
        assert checks["image categories"].detail.startswith("not checked")

    def test_no_category(self, bare_world: World, proc: Path) -> None:
        results = run_checks(settings_for(bare_world), bare_world.engine, proc=proc)

        assert failed(results) == {"image categories"}
        assert "Image Categories" in by_name(results)["image categories"].detail

    def test_only_hidden_or_other_categories(self, bare_world: World, proc: Path) -> None:
        bare_world.add_category("Old", order=0, hidden=True)
        bare_world.add_category("Not an image category", order=1, category=1)

        results = run_checks(settings_for(bare_world), bare_world.engine, proc=proc)

        assert failed(results) == {"image categories"}
        assert "only 1 hidden" in by_name(results)["image categories"].detail

    def test_unreachable_database_hides_the_secret(self, bare_world: World, proc: Path) -> None:
        bare_world.add_category("X-Rays", order=0)
        url = "mysql+pymysql://root:pw@127.0.0.1:1/x"
        engine = make_engine(url)
        settings = settings_for(bare_world).model_copy(update={"database_url": url})
        try:
            results = run_checks(settings, engine, proc=proc)
        finally:
            engine.dispose()

        checks = by_name(results)
        assert failed(results) == {"database", "tables", "image categories"}
        assert "127.0.0.1:1" in checks["database"].detail
        assert "Can't connect" in checks["database"].detail
        assert "root:***@" in checks["database"].detail
        for result in results:
            assert "pw" not in result.detail
            assert "\n" not in result.detail

    def test_wrong_password_names_the_refusal_not_the_password(
        self, tmp_path: Path, proc: Path
    ) -> None:
        secret = "Wrong-Secret-42"
        SECRETS.add(secret, what="database password")
        with mariadb_database(opendental_schema=True) as url:
            bad_url = url.replace("root@", f"root:{secret}@")
            assert secret in bad_url
            engine = make_engine(bad_url)
            settings = Settings(atoz_path=tmp_path, database_url=bad_url, state_dir=tmp_path)
            try:
                results = run_checks(settings, engine, proc=proc)
            finally:
                engine.dispose()

        checks = by_name(results)
        assert not checks["database"].ok
        assert "Access denied" in checks["database"].detail
        assert all(secret not in result.detail for result in results)
        assert secret not in format_results(results)

    def test_a_password_in_a_driver_message_is_masked(self) -> None:
        engine = make_engine("mysql+pymysql://od:Hunter2-Secret@db.example:3306/opendental")
        error = OperationalError("SELECT 1", {}, Exception("bad login\nod/Hunter2-Secret"))
        try:
            assert describe_error(error, engine) == "bad login od/***"
        finally:
            engine.dispose()


class TestRoot:
    def test_missing_root(self, bare_world: World, proc: Path) -> None:
        bare_world.add_category("X-Rays", order=0)
        missing = bare_world.root.parent / "not-mounted"

        results = run_checks(settings_for(bare_world, root=missing), bare_world.engine, proc=proc)

        checks = by_name(results)
        assert failed(results) == {
            "A-to-Z root",
            "A-to-Z root group",
            "links in the A-to-Z tree",
            "inotify watches",
        }
        assert "does not exist" in checks["A-to-Z root"].detail
        assert checks["inotify watches"].detail.startswith("not checked")

    def test_root_is_a_file(self, bare_world: World, proc: Path) -> None:
        bare_world.add_category("X-Rays", order=0)
        a_file = bare_world.root.parent / "a-file"
        a_file.write_text("x", encoding="utf-8")

        results = run_checks(settings_for(bare_world, root=a_file), bare_world.engine, proc=proc)

        assert "not a directory" in by_name(results)["A-to-Z root"].detail
        assert failed(results) == {
            "A-to-Z root",
            "A-to-Z root group",
            "links in the A-to-Z tree",
            "inotify watches",
        }

    def test_a_root_its_group_cannot_write_is_reported(self, bare_world: World, proc: Path) -> None:
        bare_world.add_category("X-Rays", order=0)
        settings = settings_for(bare_world)
        bare_world.root.chmod(0o755)  # what mkdir under a umask of 022 gives

        results = run_checks(settings, bare_world.engine, proc=proc)

        detail = by_name(results)["A-to-Z root group"].detail
        assert failed(results) == {"A-to-Z root group"}
        assert "drwxr-xr-x" in detail
        assert "cannot write" in detail
        assert f"chmod g+rwxs {bare_world.root}" in detail

    def test_a_group_writable_root_without_setgid_passes_with_advice(
        self, bare_world: World, proc: Path
    ) -> None:
        bare_world.add_category("X-Rays", order=0)
        settings = settings_for(bare_world)
        bare_world.root.chmod(0o775)

        results = run_checks(settings, bare_world.engine, proc=proc)

        detail = by_name(results)["A-to-Z root group"].detail
        assert not failed(results), format_results(results)
        assert "can write" in detail
        assert f"chmod g+s {bare_world.root}" in detail


class TestInotify:
    def test_too_few_watches(self, bare_world: World, tmp_path: Path) -> None:
        bare_world.add_category("X-Rays", order=0)
        make_folders(bare_world.root, 20)
        proc = fake_proc(tmp_path / "low", watches=10)

        results = run_checks(settings_for(bare_world), bare_world.engine, proc=proc)

        detail = by_name(results)["inotify watches"].detail
        assert failed(results) == {"inotify watches"}
        assert "21 folders to watch" in detail
        assert "sysctl -w fs.inotify.max_user_watches=524288" in detail
        assert "/etc/sysctl.d/" in detail

    def test_polling_needs_no_inotify(self, bare_world: World, tmp_path: Path) -> None:
        bare_world.add_category("X-Rays", order=0)
        make_folders(bare_world.root, 20)
        proc = fake_proc(tmp_path / "low", watches=10, instances=0)

        results = run_checks(settings_for(bare_world, mode="polling"), bare_world.engine, proc=proc)

        checks = by_name(results)
        assert not failed(results)
        assert checks["inotify watches"].detail == "not used (polling)"
        assert checks["inotify instances"].detail == "not used (polling)"

    def test_watches_just_enough(self, tmp_path: Path) -> None:
        root = tmp_path / "root"
        make_folders(root, 20)
        enough = watches_needed(21)

        ok = check_inotify(root, mode="native", proc=fake_proc(tmp_path / "a", watches=enough))
        short = check_inotify(
            root, mode="native", proc=fake_proc(tmp_path / "b", watches=enough - 1)
        )

        assert ok[0].ok
        assert not short[0].ok

    def test_no_instances(self, tmp_path: Path) -> None:
        root = tmp_path / "root"
        root.mkdir()

        watches, instances = check_inotify(
            root, mode="native", proc=fake_proc(tmp_path / "p", watches=524_288, instances=0)
        )

        assert watches.ok
        assert not instances.ok
        assert "max_user_instances is 0" in instances.detail
        assert "sysctl -w fs.inotify.max_user_instances=" in instances.detail

    @pytest.mark.parametrize(("mode", "ok"), [("native", False), ("auto", True)])
    def test_no_proc_files(self, tmp_path: Path, mode, ok) -> None:
        root = tmp_path / "root"
        root.mkdir()

        results = check_inotify(root, mode=mode, proc=tmp_path / "absent")

        assert [result.ok for result in results] == [ok, ok]
        assert all("cannot read" in result.detail for result in results)

    def test_garbage_in_proc(self, tmp_path: Path) -> None:
        root = tmp_path / "root"
        root.mkdir()
        proc = fake_proc(tmp_path / "p", watches="lots", instances="many")

        results = check_inotify(root, mode="native", proc=proc)

        assert [result.ok for result in results] == [False, False]
        assert "does not hold a number" in results[0].detail


class TestCountFolders:
    def test_root_letters_and_patients_not_deeper_files_or_symlinks(self, tmp_path: Path) -> None:
        root = tmp_path / "root"
        patient = root / "S" / "SmithJohn15"
        (patient / "Thumbnails").mkdir(parents=True)
        (root / "S" / "SmithJane16").mkdir()
        (root / "J" / "JonesAl3").mkdir(parents=True)
        (patient / "scan.jpg").write_bytes(b"x")
        elsewhere = tmp_path / "elsewhere" / "deep"
        elsewhere.mkdir(parents=True)
        (root / "S" / "link").symlink_to(elsewhere.parent, target_is_directory=True)

        # root, S, J, SmithJohn15, SmithJane16, JonesAl3: not Thumbnails, not the symlink
        assert count_folders(root) == (6, 0)

    def test_an_empty_root(self, tmp_path: Path) -> None:
        assert count_folders(tmp_path) == (1, 0)

    def test_a_deep_tree_is_counted_down_to_patient_folders_only(self, tmp_path: Path) -> None:
        path = tmp_path
        for _ in range(1200):
            path /= "d"
            path.mkdir()

        assert count_folders(tmp_path) == (3, 0)

    @pytest.mark.parametrize(
        ("needed", "suggested"),
        [(0, 524_288), (100_000, 524_288), (262_144, 524_288), (300_000, 655_360)],
    )
    def test_suggested_value(self, needed: int, suggested: int) -> None:
        assert suggested_max_watches(needed) == suggested
        assert suggested_max_watches(needed) >= needed


class TestStateDirectory:
    def test_existing_and_writable(self, tmp_path: Path) -> None:
        result = check_state_dir(tmp_path)
        assert result.ok
        assert result.detail == f"{tmp_path} is writable"

    def test_can_be_created(self, tmp_path: Path) -> None:
        state = tmp_path / "a" / "b" / "state"

        result = check_state_dir(state)

        assert result.ok
        assert "will be created" in result.detail
        assert not state.exists(), "a check must not create it"

    def test_a_file_in_the_way(self, tmp_path: Path) -> None:
        (tmp_path / "state").write_text("x", encoding="utf-8")

        assert not check_state_dir(tmp_path / "state").ok
        assert not check_state_dir(tmp_path / "state" / "below").ok

    @pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
    def test_not_writable(self, tmp_path: Path) -> None:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        try:
            assert not check_state_dir(locked).ok
            assert not check_state_dir(locked / "state").ok
        finally:
            locked.chmod(0o700)


class TestFormat:
    def test_one_line_each(self) -> None:
        results = [
            CheckResult("database", ok=True, detail="connected to sqlite:///x"),
            CheckResult("tables", ok=False, detail="missing document: run init-db"),
        ]

        assert format_results(results) == (
            "ok   database: connected to sqlite:///x\nFAIL tables: missing document: run init-db"
        )

    def test_nothing(self) -> None:
        assert format_results([]) == ""
