"""The atoz-watcher command as a user runs it: real processes, real databases, real folders."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import inspect, text

from atoz_watcher.app.cli_args import COMMANDS
from atoz_watcher.app.demo import png_bytes
from atoz_watcher.db.engine import DEFAULT_CATEGORIES, create_missing_tables, make_engine
from tests.support.mariadb import MARIADB, mariadb_database
from tests.support.processes import COMMAND_TIMEOUT_S, run
from tests.support.worlds import World

pytestmark = pytest.mark.process  # each test runs the atoz-watcher command


def sqlite_env(tmp_path: Path) -> dict[str, str]:
    """A root and an embedded database with the tables: for what depends on no database."""
    root = tmp_path / "OpenDentImages"
    root.mkdir()
    url = f"sqlite:///{tmp_path / 'state' / 'atoz.sqlite3'}"
    engine = make_engine(url)
    try:
        create_missing_tables(engine)
    finally:
        engine.dispose()
    return {
        "PATH": "/usr/bin:/bin",
        "ATOZ_PATH": str(root),
        "ATOZ_DATABASE_URL": url,
        "ATOZ_STATE_DIR": str(tmp_path / "state"),
    }


def fill_tree(world: World, *, patients: int, files: int, category: int) -> int:
    """Patients with folders full of files, half of them prefixed; returns the file count."""
    for folder in world.patients_with_folders("Pat", patients):
        for j in range(files):
            name = f"_{category}_f{j}.jpg" if j % 2 else f"f{j}.jpg"
            (folder / name).write_bytes(b"x")
    return patients * files


def test_init_db_creates_tables_and_categories_once(bare_world: World) -> None:
    world = bare_world
    with world.engine.begin() as conn:
        for table in ("document", "mountitem", "mount", "definition", "patient"):
            conn.execute(text(f"DROP TABLE {table}"))

    first = run(world.cli_env(), "init-db")
    second = run(world.cli_env(), "init-db")

    assert first.returncode == 0, first.stderr
    assert "image categories added: Miscellaneous" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "none (all present)" in second.stdout
    assert "none (some exist)" in second.stdout
    tables = set(inspect(world.engine).get_table_names())
    assert {"patient", "definition", "document", "mount", "mountitem"} <= tables
    with world.engine.connect() as conn:
        count = conn.execute(text("SELECT COUNT(*) FROM definition WHERE Category = 18"))
        assert count.scalar_one() == len(DEFAULT_CATEGORIES)


def test_init_db_never_alters_an_existing_table(tmp_path: Path) -> None:
    """Open Dental's own tables (extra columns, MyISAM) stay exactly as they are."""
    with mariadb_database(opendental_schema=True) as url:
        database = url.rsplit("/", 1)[1].split("?")[0]

        def definition() -> str:
            conn = pymysql.connect(**MARIADB, database=database)
            with conn, conn.cursor() as cursor:
                cursor.execute("SHOW CREATE TABLE document")
                return str(cursor.fetchone()[1])

        before = definition()
        env = {"ATOZ_PATH": str(tmp_path), "ATOZ_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
        result = run(env, "init-db")
        assert result.returncode == 0, result.stderr
        assert "tables created: mount, mountitem" in result.stdout
        assert definition() == before
        assert "ChartLetterHash" in before


def test_rescan_prints_a_summary(world: World) -> None:
    xrays = world.add_category("X-Rays", order=0)
    world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    (folder / f"_{xrays}_a.jpg").write_bytes(b"a")
    (folder / "Thumbs.db").write_bytes(b"t")
    world.folder("Nobody9")

    result = run(world.cli_env(), "rescan")

    assert result.returncode == 0, result.stderr
    assert "folders: 2" in result.stdout
    assert "files seen: 2" in result.stdout
    assert "registered: 1" in result.stdout
    assert "skipped: 1 (thumbs-db 1)" in result.stdout
    assert "unmatched folders: 1\n  N/Nobody9 (no-patient)" in result.stdout


def test_rescan_leaves_an_inbox_inside_the_root_alone(world: World) -> None:
    """An inbox kept inside the A-to-Z root is the inbox's, not an unmatched letter folder."""
    world.add_category("Misc", order=0)
    world.add_patient("Smith", "John", "SmithJohn1")
    (world.folder("SmithJohn1") / "a.jpg").write_bytes(b"a")
    inbox = world.root / "Inbox"
    (inbox / "_Unmatched").mkdir(parents=True)
    (inbox / "_Unmatched" / "scan.pdf").write_bytes(b"%PDF-1.4")
    env = world.cli_env()
    env["ATOZ_INBOX__FOLDERS"] = json.dumps([{"path": str(inbox)}])

    result = run(env, "rescan")

    assert result.returncode == 0, result.stderr
    assert "registered: 1" in result.stdout
    assert "unmatched folders: 0" in result.stdout
    assert "Inbox" not in result.stdout
    assert (inbox / "_Unmatched" / "scan.pdf").exists()


def test_dry_run_prints_the_plan_and_changes_nothing(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    pat = world.add_patient("Adams", "Ann")  # empty ImageFolder: would be adopted
    folder = world.folder(f"AdamsAnn{pat}")
    (folder / f"_{xrays}_pa.jpg").write_bytes(b"a")
    (folder / "pa.jpg").write_bytes(b"b")

    result = run(world.cli_env(), "rescan", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert (
        f"would register {folder / 'xpa.jpg'} (was _{xrays}_pa.jpg): patient {pat}, "
        "category X-Rays\n" in result.stdout
    )
    assert f"would register {folder / 'pa.jpg'}: patient {pat}, category Misc\n" in result.stdout
    assert misc != xrays
    assert "would register: 2" in result.stdout
    assert "folders would adopt: 1" in result.stdout
    assert world.documents() == []
    assert world.image_folder(pat) == ""
    assert sorted(p.name for p in folder.iterdir()) == [f"_{xrays}_pa.jpg", "pa.jpg"]


def test_rescan_one_patient(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    one = world.add_patient("One", "Ann", "OneAnn1")
    two = world.add_patient("Two", "Bob", "TwoBob2")
    (world.folder("OneAnn1") / "a.jpg").write_bytes(b"a")
    (world.folder("TwoBob2") / "b.jpg").write_bytes(b"b")

    result = run(world.cli_env(), "rescan", "--patient", str(one))

    assert result.returncode == 0, result.stderr
    assert "folders: 1" in result.stdout
    assert [(d["PatNum"], d["FileName"], d["DocCategory"]) for d in world.documents()] == [
        (one, "a.jpg", misc)
    ]
    assert world.documents(two) == []


def test_two_rescans_at_once_make_no_duplicates(world: World) -> None:
    world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    total = fill_tree(world, patients=12, files=16, category=xrays)
    env = world.cli_env() | {"ATOZ_SCAN__BATCH_SIZE": "5"}
    command = [sys.executable, "-m", "atoz_watcher", "rescan"]

    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=COMMAND_TIMEOUT_S) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    docs = world.documents()
    keys = Counter((d["PatNum"], d["FileName"]) for d in docs)
    assert len(docs) == total
    assert max(keys.values()) == 1
    on_disk = sorted(p.name for p in world.root.rglob("*.jpg"))
    assert not [name for name in on_disk if name.startswith("_")]
    assert sorted(name for _, name in keys) == on_disk
    assert sum(d["DocCategory"] == xrays for d in docs) == total // 2


def test_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    env = {
        "ATOZ_PATH": str(tmp_path),
        "ATOZ_DATABASE_URL": "mysql+pymysql://root:s3cret-pass@127.0.0.1:1/none",
        "PATH": "/usr/bin:/bin",
    }

    result = run(env, "rescan")

    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert "database unreachable" in result.stderr
    assert "s3cret-pass" not in result.stderr
    assert "Traceback" not in result.stderr


def test_unusable_root_is_a_one_line_error(bare_world: World, tmp_path: Path) -> None:
    env = bare_world.cli_env() | {"ATOZ_PATH": str(tmp_path / "missing")}

    result = run(env, "rescan")

    assert result.returncode == 4
    assert result.stderr.strip().endswith("it does not exist")
    assert result.stderr.count("\n") == 1


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "atoz.toml"
    config.write_text('atoz_path = "/srv/x"\nbatchsize = 3\n[scan]\nbatch_size = -1\n')

    result = run({"PATH": "/usr/bin:/bin"}, "--config", str(config), "rescan")

    assert result.returncode == 2
    assert "batchsize: unknown key" in result.stderr
    assert "scan.batch_size:" in result.stderr
    assert "Traceback" not in result.stderr


def test_rescan_refuses_in_database_storage(bare_world: World) -> None:
    env = bare_world.cli_env() | {"ATOZ_STORAGE": "InDatabase"}

    result = run(env, "rescan")

    assert result.returncode == 2
    assert "storage: InDatabase" in result.stderr


def test_demo_ignores_a_database_url_in_the_environment(world: World, tmp_path: Path) -> None:
    env = world.cli_env()  # ATOZ_DATABASE_URL points at this test's real database

    result = run(env, "demo", "--dir", str(tmp_path / "demo"))

    assert result.returncode == 0, result.stderr
    assert "registered: 8" in result.stdout
    assert world.documents() == []


def test_missing_tables_say_to_run_init_db(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    make_engine(url).dispose()
    env = {"ATOZ_PATH": str(tmp_path), "ATOZ_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}

    result = run(env, "rescan")

    assert result.returncode == 2
    assert "atoz-watcher init-db" in result.stderr


def test_demo_registers_its_sample_files(tmp_path: Path) -> None:
    result = run({"PATH": "/usr/bin:/bin"}, "demo", "--dir", str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert "registered: 8" in result.stdout
    assert "Z/Zed99999 (no-patient)" in result.stdout
    smith = tmp_path / "OpenDentImages" / "S" / "SmithJohn1"
    assert sorted(p.name for p in smith.glob("*.png")) == [
        "bitewing.png",
        "intraoral photo.png",
        "referral.png",
        "xreferral.png",
    ]


def test_demo_watch_runs_the_daemon_on_the_demo_tree(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "atoz_watcher", "demo", "--watch", "--dir", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends when the process does: no silent hang past the timeout
            if line.startswith("watching "):
                break
        folder = tmp_path / "OpenDentImages" / "S" / "SmithJohn1"
        (folder / "_2_dropped.png").write_bytes(b"png")
        deadline = time.monotonic() + 30
        while not (folder / "dropped.png").exists():
            assert time.monotonic() < deadline, "the demo daemon did not register the file"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "document.registered" in err
    assert "dropped.png" in err


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version(flag: str) -> None:
    result = run({"PATH": "/usr/bin:/bin"}, flag)
    assert result.returncode == 0
    assert "atoz-watcher" in result.stdout


def test_materialize_command_turns_a_placeholder_into_its_file(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    payload = b"%PDF-1.4 a letter"
    doc = world.add_document(
        pat, "", misc, Note="_rawBase64_:.pdf_" + base64.b64encode(payload).decode()
    )

    result = run(world.cli_env(), "materialize")

    assert result.returncode == 0, result.stderr
    assert f"DocNum {doc} -> SmithJohn{doc}.pdf" in result.stdout
    assert (world.folder("SmithJohn1") / f"SmithJohn{doc}.pdf").read_bytes() == payload
    assert world.documents(pat)[0]["Note"] == ""
    assert payload.decode() not in result.stderr


def test_rescan_leaves_a_file_written_a_moment_ago_for_later(world: World) -> None:
    world.add_category("Misc", order=0)
    world.add_patient("Smith", "John", "SmithJohn1")
    (world.folder("SmithJohn1") / "scanning.jpg").write_bytes(b"first chunk")
    env = {**world.cli_env(), "ATOZ_WATCHER__OPEN_SETTLE_SECONDS": "60"}

    result = run(env, "rescan")

    assert result.returncode == 0, result.stderr
    assert "still-being-written 1" in result.stdout
    assert "left for later, perhaps still being written: 1 file\n" in result.stdout
    named = [line for line in result.stdout.splitlines() if "scanning.jpg" in line]
    assert len(named) == 1
    assert named[0].startswith(f"  {world.folder('SmithJohn1') / 'scanning.jpg'}: a rescan from ")
    assert world.documents() == []


def test_rescan_prints_a_line_per_file_unless_told_to_be_quiet(world: World) -> None:
    world.add_category("Misc", order=0)
    xrays = world.add_category("X-Rays", order=1)
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    (folder / f"_{xrays}_bw.jpg").write_bytes(b"a")
    (folder / "Thumbs.db").write_bytes(b"t")
    (folder / "elsewhere.jpg").symlink_to(world.root.parent / "outside.jpg")
    later = folder / "later.jpg"

    result = run(world.cli_env(), "rescan")
    later.write_bytes(b"q")
    silent = run(world.cli_env(), "rescan", "--log-level", "warning")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    doc = world.documents()[0]["DocNum"]
    assert (
        f"registered {folder / 'bw.jpg'} (was _{xrays}_bw.jpg): patient {pat}, "
        f"category X-Rays, DocNum {doc}"
    ) in lines
    assert f"skipped {folder / 'elsewhere.jpg'}: symlink" in lines
    assert not [line for line in lines if "Thumbs.db" in line]  # litter: counted, not listed
    assert silent.returncode == 0, silent.stderr
    assert "registered: 1" in silent.stdout
    assert "later.jpg" not in silent.stdout


def test_rescan_of_an_unknown_patient_is_an_error(bare_world: World) -> None:
    world = bare_world
    world.add_category("Misc", order=0)
    world.add_patient("Smith", "John", "SmithJohn1")

    result = run(world.cli_env(), "rescan", "--patient", "999")
    thumbnails = run(world.cli_env(), "thumbnails", "--patient", "999")

    for answer in (result, thumbnails):
        assert answer.returncode == 2
        assert answer.stderr == (
            "atoz-watcher: --patient 999: there is no patient with PatNum 999\n"
        )
        assert answer.stdout == ""


def test_rescan_of_a_patient_without_a_folder_says_so(bare_world: World) -> None:
    world = bare_world
    world.add_category("Misc", order=0)
    pat = world.add_patient("Jones", "Amy")

    result = run(world.cli_env(), "rescan", "--patient", str(pat))

    assert result.returncode == 0, result.stderr
    expected = world.root / "J" / f"JonesAmy{pat}"
    assert f"patient {pat} has no folder yet: {expected} does not exist" in result.stdout


def test_thumbnails_prints_a_line_per_thumbnail(world: World) -> None:
    misc = world.add_category("Misc", order=0)
    pat = world.add_patient("Smith", "John", "SmithJohn1")
    folder = world.folder("SmithJohn1")
    (folder / "photo.png").write_bytes(png_bytes(40, 30, (10, 200, 10)))
    (folder / "broken.png").write_bytes(b"not a png")
    world.add_document(pat, "photo.png", misc)
    broken = world.add_document(pat, "broken.png", misc)

    result = run(world.cli_env(), "thumbnails")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"made {folder / 'Thumbnails' / 'photo.png'}" in lines
    assert f"failed DocNum {broken}: {folder / 'broken.png'}" in lines


def test_config_is_taken_after_the_subcommand_too(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    del env["ATOZ_PATH"]
    config = tmp_path / "atoz.toml"
    config.write_text(f'atoz_path = "{elsewhere}"\n[scan]\nbatch_size = 0\n', encoding="utf-8")
    bad = run(env, "rescan", "--config", str(config))
    config.write_text(f'atoz_path = "{elsewhere}"\n', encoding="utf-8")
    used = run(env, "rescan", "--config", str(config))
    before = run(env, "--config", str(config), "rescan")

    # The file was read: its bad value is reported, then its root is the one used.
    assert bad.returncode == 2
    assert f"configuration error in {config}:\n  scan.batch_size: " in bad.stderr
    assert used.returncode == 4
    assert f"A-to-Z root {elsewhere} is unusable" in used.stderr
    assert before.stderr == used.stderr


def test_a_bad_environment_variable_is_named(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)

    result = run(env | {"ATOZ_SCAN__BATCH_SIZE": "many"}, "rescan")
    json_result = run(env | {"ATOZ_WATCHER__IGNORE": "*.tmp"}, "rescan")

    assert result.returncode == 2
    assert "  ATOZ_SCAN__BATCH_SIZE (scan.batch_size): " in result.stderr
    assert "configuration error:\n" in result.stderr  # no file to blame
    assert json_result.returncode == 2
    assert json_result.stderr.startswith(
        "atoz-watcher: configuration error: ATOZ_WATCHER__IGNORE: not valid JSON"
    )
    for answer in (result, json_result):
        assert "Traceback" not in answer.stderr


def test_a_metrics_port_in_use_is_one_line(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run(env | {"ATOZ_METRICS__PORT": str(port)}, "run")

    assert result.returncode == 2
    assert result.stderr == (
        f"atoz-watcher: metrics.host/metrics.port: cannot listen on 127.0.0.1:{port}: "
        "Address already in use; stop what uses it, set another metrics.port, or set "
        "metrics.enabled = false\n"
    )


def test_a_state_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("x", encoding="utf-8")
    env = sqlite_env(tmp_path) | {"ATOZ_STATE_DIR": str(in_the_way / "state")}

    results = [run(env, command) for command in ("run", "rescan")]

    for result in results:
        assert result.returncode == 2
        assert result.stderr.startswith(f"atoz-watcher: state_dir: cannot create {in_the_way}")
        assert result.stderr.count("\n") == 1


def test_a_demo_run_again_reuses_its_data(tmp_path: Path) -> None:
    first = run({"PATH": "/usr/bin:/bin"}, "demo", "--dir", str(tmp_path))
    files = sorted((tmp_path / "OpenDentImages").rglob("*"))
    second = run({"PATH": "/usr/bin:/bin"}, "demo", "--dir", str(tmp_path))

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert f"reusing the sample data in {tmp_path}" in second.stdout
    # The 8 sample files and the 2 documents the first run's inbox split its batch scan into.
    assert "registered: 0\nalready registered: 10" in second.stdout
    assert "nothing waiting" in second.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'state' / 'atoz-watcher.sqlite3'}")
    try:
        with engine.connect() as conn:
            patients = conn.execute(text("SELECT COUNT(*) FROM patient")).scalar_one()
            documents = conn.execute(text("SELECT COUNT(*) FROM document")).scalar_one()
    finally:
        engine.dispose()
    assert (patients, documents) == (3, 10)
    assert sorted((tmp_path / "OpenDentImages").rglob("*")) == files
    smith = tmp_path / "OpenDentImages" / "S" / "SmithJohn1"
    assert f"  #1   {smith}\n" in first.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_says_what_it_does_with_an_example(command: str) -> None:
    result = run({"PATH": "/usr/bin:/bin"}, command, "--help")

    assert result.returncode == 0, result.stderr
    assert COMMANDS[command].description.split()[0] in result.stdout
    assert f"example:\n  {COMMANDS[command].example}\n" in result.stdout
    assert "--config FILE" in result.stdout


def test_check_flags_a_root_its_group_cannot_write(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    root = Path(env["ATOZ_PATH"])
    root.chmod(0o755)

    closed = run(env, "check")
    root.chmod(0o2775)
    opened = run(env, "check")

    assert closed.returncode == 1, closed.stderr
    assert f"FAIL A-to-Z root group: {root} is drwxr-xr-x: its group " in closed.stdout
    assert f"`chmod g+rwxs {root}`" in closed.stdout
    assert f"ok   A-to-Z root group: {root} is drwxrwsr-x, group " in opened.stdout
