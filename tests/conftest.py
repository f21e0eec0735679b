"""Fixtures: a test world (A-to-Z root, state folder, database) on SQLite and on MariaDB.

MariaDB is the real server on 127.0.0.1:3306 (root, no password); each test gets its own
database, created and dropped here. Where the server is absent the MariaDB cases are skipped,
except under CI (CI=true), where that is a failure: CI must test both databases.

``--long`` (or ``ATOZ_FAULT_LONG=1``) switches the fault suite (tests/fault/) to its long mode.
The option is registered here, so that pytest knows it however it is started: from the root
(``pytest --long``) or naming a folder or file (``pytest --long tests/fault/test_crash.py``).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import Engine, MetaData, Table, select, text

from atoz_watcher.db.engine import create_missing_tables, make_engine
from atoz_watcher.db.shape import TableShape
from atoz_watcher.ingest.registrar import Registrar
from atoz_watcher.ingest.rescan import Rescanner, Summary
from atoz_watcher.rules.layout import patient_dir
from atoz_watcher.system.journal import Journal

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
IMAGE_CATEGORY = 18

# Open Dental 25.4's document table as its own schema dump declares it (MyISAM, no defaults on
# most columns, three columns atoz-watcher does not know), and a patient table with NOT NULL
# columns we never write. Inserts must still succeed in MariaDB's strict mode.
OPEN_DENTAL_DDL = (
    """CREATE TABLE patient (
        PatNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        LName varchar(100) NOT NULL, FName varchar(100) NOT NULL,
        MiddleI varchar(100) NOT NULL, Preferred varchar(100) NOT NULL,
        PatStatus tinyint unsigned NOT NULL, Gender tinyint unsigned NOT NULL,
        Birthdate date NOT NULL, SSN varchar(100) NOT NULL, Address varchar(100) NOT NULL,
        ImageFolder varchar(100) NOT NULL, EstBalance double NOT NULL,
        DateTStamp timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
        SecDateEntry date NOT NULL
    ) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE definition (
        DefNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        Category tinyint unsigned NOT NULL, ItemOrder smallint unsigned NOT NULL,
        ItemName varchar(255) NOT NULL, ItemValue varchar(255) NOT NULL,
        ItemColor int NOT NULL, IsHidden tinyint NOT NULL
    ) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE document (
        DocNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        Description varchar(255) NOT NULL, DateCreated datetime NOT NULL,
        DocCategory bigint NOT NULL, PatNum bigint NOT NULL, FileName varchar(255) NOT NULL,
        ImgType tinyint unsigned NOT NULL, IsFlipped tinyint NOT NULL,
        DegreesRotated float NOT NULL, ToothNumbers varchar(255) NOT NULL, Note mediumtext,
        SigIsTopaz tinyint NOT NULL, Signature text, CropX int NOT NULL, CropY int NOT NULL,
        CropW int NOT NULL, CropH int NOT NULL, WindowingMin int NOT NULL,
        WindowingMax int NOT NULL, MountItemNum bigint NOT NULL,
        DateTStamp timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
        RawBase64 mediumtext NOT NULL, Thumbnail text NOT NULL,
        ExternalGUID varchar(255) NOT NULL, ExternalSource varchar(255) NOT NULL,
        ProvNum bigint NOT NULL, IsCropOld tinyint unsigned NOT NULL,
        OcrResponseData text NOT NULL, ImageCaptureType tinyint NOT NULL,
        PrintHeading tinyint NOT NULL, ChartLetterHash varchar(255) NOT NULL,
        ChartLetterStatus tinyint NOT NULL, UserNum bigint NOT NULL,
        KEY PatNum (PatNum), KEY PNDC (PatNum, DocCategory), KEY MountItemNum (MountItemNum)
    ) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4""",
)

DB_KINDS = ("sqlite", "mariadb", "mariadb-opendental")

_OWN_BASETEMP = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="fault suite (tests/fault/): the long mode (same as ATOZ_FAULT_LONG=1)",
    )


def long_mode(config: pytest.Config) -> bool:
    """True under ``--long`` or ``ATOZ_FAULT_LONG=1`` (any value but empty or 0)."""
    option = bool(config.getoption("--long", default=False))
    return option or os.environ.get("ATOZ_FAULT_LONG", "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    """Give each run a fresh temporary root of its own (unless --basetemp is given).

    pytest's default numbered folders are pruned at exit by a helper that can leave an
    os.scandir iterator open; with warnings as errors that fails a run whose tests all passed.
    A root of our own is never pruned that way, and concurrent runs cannot touch each other's.
    """
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="atoz-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp
    config.pluginmanager.register(SecretsWatch(), "atoz-secrets-watch")


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        # rm, not shutil.rmtree: some tests build folders deeper than Python's recursion limit.
        subprocess.run(["/bin/rm", "-rf", "--", own], check=False)


def mariadb_available() -> bool:
    try:
        pymysql.connect(**MARIADB, connect_timeout=3).close()
    except pymysql.Error:
        return False
    return True


def _require_mariadb() -> None:
    if mariadb_available():
        return
    message = "MariaDB is not reachable on 127.0.0.1:3306"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must run the MariaDB tests (.ci/run starts the server)")
    pytest.skip(message)


@contextmanager
def mariadb_database(*, opendental_schema: bool) -> Iterator[str]:
    """A fresh, empty database on the MariaDB server; dropped afterwards. Yields its URL."""
    _require_mariadb()
    name = f"atoz_test_{uuid.uuid4().hex[:12]}"
    admin = pymysql.connect(**MARIADB, autocommit=True)
    with admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        if opendental_schema:
            conn = pymysql.connect(**MARIADB, database=name, autocommit=True)
            with conn, conn.cursor() as cursor:
                for ddl in OPEN_DENTAL_DDL:
                    cursor.execute(ddl)
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        # A new connection: a test may have restarted the server (an outage test).
        admin = pymysql.connect(**MARIADB, autocommit=True)
        with admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'atoz-watcher.sqlite3'}"
        return
    with mariadb_database(opendental_schema=kind == "mariadb-opendental") as url:
        yield url


@dataclass
class World:
    """One A-to-Z root, one state folder and one database, with helpers to fill them."""

    kind: str
    url: str
    engine: Engine
    root: Path
    state: Path

    def _insert(self, table: str, values: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            shape = TableShape.reflect(conn, table)
            result = conn.execute(shape.table.insert(), [shape.complete(values)])
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def add_patient(self, lname: str, fname: str, image_folder: str = "") -> int:
        return self._insert(
            "patient",
            {"LName": lname, "FName": fname, "PatStatus": 0, "ImageFolder": image_folder},
        )

    def add_category(
        self, name: str, *, order: int, hidden: bool = False, category: int = IMAGE_CATEGORY
    ) -> int:
        return self._insert(
            "definition",
            {
                "Category": category,
                "ItemOrder": order,
                "ItemName": name,
                "ItemValue": "",
                "ItemColor": 0,
                "IsHidden": int(hidden),
            },
        )

    def add_document(self, pat_num: int, file_name: str, category: int, **columns: Any) -> int:
        return self._insert(
            "document",
            {
                "PatNum": pat_num,
                "FileName": file_name,
                "Description": file_name,
                "DocCategory": category,
                "Note": "",
                "Signature": "",
                **columns,
            },
        )

    def patients_with_folders(self, lname: str, count: int) -> list[Path]:
        """``count`` patients named ``lname`` (first names P0, P1, ...), each with its folder."""
        folders = []
        for i in range(count):
            name = f"{lname}P{i}x"
            self.add_patient(lname, f"P{i}", name)
            folders.append(self.folder(name))
        return folders

    def folder(self, image_folder: str) -> Path:
        path = patient_dir(self.root, image_folder)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def documents(self, pat_num: int | None = None) -> list[dict[str, Any]]:
        table = Table("document", MetaData(), autoload_with=self.engine)
        query = select(table).order_by(table.c.DocNum)
        if pat_num is not None:
            query = query.where(table.c.PatNum == pat_num)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def image_folder(self, pat_num: int) -> str:
        with self.engine.connect() as conn:
            value = conn.execute(
                text("SELECT ImageFolder FROM patient WHERE PatNum = :p"), {"p": pat_num}
            ).scalar_one()
            return str(value)

    def registrar(self) -> Registrar:
        return Registrar(self.engine, Journal(self.state / "journal"), lock_timeout_s=30)

    def rescanner(self) -> Rescanner:
        return Rescanner(self.engine, self.registrar(), self.root, batch_size=50)

    def rescan(self, *, pat_num: int | None = None, dry_run: bool = False) -> Summary:
        return self.rescanner().run(pat_num=pat_num, dry_run=dry_run)

    def cli_env(self) -> dict[str, str]:
        """Environment for running the atoz-watcher command against this world."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATOZ_")}
        env.update(
            ATOZ_PATH=str(self.root),
            ATOZ_DATABASE_URL=self.url,
            ATOZ_STATE_DIR=str(self.state),
            # Files a test has just written count as settled (test_cli checks the default).
            ATOZ_WATCHER__OPEN_SETTLE_SECONDS="0.001",
        )
        return env


def _make_world(kind: str, tmp_path: Path) -> Iterator[World]:
    root = tmp_path / "OpenDentImages"
    root.mkdir()
    state = tmp_path / "state"
    with database_url(kind, tmp_path) as url:
        engine = make_engine(url, busy_timeout_s=30)
        try:
            if kind != "mariadb-opendental":
                create_missing_tables(engine)
            yield World(kind=kind, url=url, engine=engine, root=root, state=state)
        finally:
            engine.dispose()


@pytest.fixture(params=DB_KINDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world on each database: SQLite, MariaDB, and MariaDB with Open Dental's own schema."""
    yield from _make_world(request.param, tmp_path)


@pytest.fixture(params=DB_KINDS[:2])
def bare_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world on SQLite and on MariaDB whose tables atoz-watcher created (or will create)."""
    yield from _make_world(request.param, tmp_path)


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread running."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


# -- secrets: nothing the suite configures as a secret may reach a log line or an error body ----
#
# Tests register the passwords, keys and base64 payloads they configure (``SECRETS.add``, or the
# ``secrets`` fixture). While the session runs, ``SecretsWatch`` collects what the suite
# produced: every captured stdout/stderr/log section of every test phase (structlog's rendered
# lines, Python logging, the output of in-process daemons and of subprocesses that inherit the
# test's stderr), every event held by structlog's ``capture_logs``, the stdout/stderr of every
# ``subprocess.run``, the body of every httpx or requests response with status >= 400, failure
# reports, and at the end every ``*.log`` file under the session's temporary root (the stderr of
# daemon processes). At session end no registered secret may appear in any of it; a leak fails
# the run and names where it was found (the secret masked). tests/system/test_secrets.py tests it.

MIN_SECRET_CHARS = 8  # shorter values would match by chance ("root", "pw")
PAYLOAD_SLICE_CHARS = 32  # a base64 payload leaks when a 32-character slice of it shows...
PAYLOAD_STRIDE = 16  # ...taken every 16 characters: any excerpt of 47+ characters is caught
_BASE64_RUN = re.compile(rf"[A-Za-z0-9+/=_-]{{{PAYLOAD_SLICE_CHARS},}}")


class Secrets:
    """The registry: values that must never be logged or echoed."""

    def __init__(self) -> None:
        self._whole: dict[str, str] = {}  # secret -> what it is (for the report)
        self._slices: dict[str, str] = {}  # 32-character slice of a payload -> what it is

    def add(self, *values: Any, what: str = "secret") -> None:
        """Passwords, keys, URLs with a password (str, or pydantic's SecretStr): the whole value
        is looked for."""
        for given in values:
            value = given.get_secret_value() if hasattr(given, "get_secret_value") else given
            if not isinstance(value, str):
                raise TypeError(f"a registered secret is a str, not {type(value).__name__}")
            if len(value) < MIN_SECRET_CHARS:
                raise ValueError(f"a registered secret needs {MIN_SECRET_CHARS}+ characters")
            self._whole[value] = what

    def add_payload(self, encoded: str, what: str = "base64 payload") -> None:
        """A base64 payload: any excerpt of it of 47 characters or more counts (a truncated log
        field, an error quoting part of a body)."""
        if len(encoded) < PAYLOAD_SLICE_CHARS:
            self.add(encoded, what=what)
            return
        last = len(encoded) - PAYLOAD_SLICE_CHARS
        for start in [*range(0, last, PAYLOAD_STRIDE), last]:
            self._slices[encoded[start : start + PAYLOAD_SLICE_CHARS]] = what

    def __len__(self) -> int:
        return len(self._whole) + len(self._slices)

    def find(self, content: str) -> list[tuple[str, str]]:
        """(what, masked excerpt) of each secret kind found in ``content``."""
        found = []
        for secret, what in self._whole.items():
            at = content.find(secret)
            if at >= 0:
                found.append((what, self._mask(content[max(0, at - 40) : at + len(secret) + 40])))
        if self._slices:
            for run in _BASE64_RUN.finditer(content):
                text = run.group()
                hits = (
                    text[i : i + PAYLOAD_SLICE_CHARS]
                    for i in range(len(text) - PAYLOAD_SLICE_CHARS + 1)
                )
                what = next((self._slices[h] for h in hits if h in self._slices), None)
                if what is not None:
                    before = content[max(0, run.start() - 40) : run.start()]
                    after = content[run.end() : run.end() + 40]
                    found.append((what, self._mask(f"{before}<{what}>{after}")))
                    break
        return found

    def _mask(self, excerpt: str) -> str:
        for secret, what in self._whole.items():  # the report must not leak either
            excerpt = excerpt.replace(secret, f"<{what}>")
        return _BASE64_RUN.sub("<base64>", excerpt) if self._slices else excerpt


@dataclass(frozen=True)
class Leak:
    where: str  # e.g. "tests/api/test_api.py::test_x (Captured stderr call)"
    what: str  # the kind of secret, never the secret itself
    excerpt: str  # the secret masked, with a little context


class Collector:
    """Texts the suite produced, each with where it came from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.texts: list[tuple[str, str]] = []

    def record(self, where: str, content: str | bytes | None) -> None:
        if not content:
            return
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        with self._lock:
            self.texts.append((where, content))

    def leaks(self, secrets: Secrets) -> list[Leak]:
        with self._lock:
            texts = list(self.texts)
        return [
            Leak(where, what, excerpt)
            for where, content in texts
            for what, excerpt in secrets.find(content)
        ]


SECRETS = Secrets()
COLLECTOR = Collector()
_collectors = [COLLECTOR]  # the last one receives; tests of the checker push a private one
_current_test = ["(outside tests)"]


def _record(where: str, content: str | bytes | None) -> None:
    _collectors[-1].record(f"{_current_test[0]} ({where})", content)


@contextmanager
def collecting_into(collector: Collector) -> Iterator[Collector]:
    """Send what the taps collect to ``collector`` instead of the session's (the checker's own
    test uses it, so that the secret it leaks on purpose does not fail the session)."""
    _collectors.append(collector)
    try:
        yield collector
    finally:
        _collectors.remove(collector)


@pytest.fixture
def secrets() -> Secrets:
    """The session's registry: ``secrets.add(password)``, ``secrets.add_payload(b64)``."""
    return SECRETS


class SecretsWatch:
    """The pytest plugin that installs the taps and checks at session end."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []
        self._run = subprocess.run  # the original, untapped

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        del session
        import httpx  # noqa: PLC0415 - a dev dependency, imported only when the suite runs
        import structlog.testing  # noqa: PLC0415

        capture_call = structlog.testing.LogCapture.__call__

        def capturing(self: Any, logger: Any, method_name: str, event_dict: Any) -> Any:
            _record("structlog capture_logs", repr(event_dict))
            return capture_call(self, logger, method_name, event_dict)

        send = httpx.Client.send

        def sending(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            response = send(self, request, *args, **kwargs)
            if response.status_code >= 400:
                try:
                    body = response.content
                except httpx.ResponseNotRead:  # streamed: the test reads it, if at all
                    body = b""
                _record(f"HTTP {response.status_code} {request.url.path}", body)
            return response

        import requests  # noqa: PLC0415 - schemathesis calls the API through requests

        send_requests = requests.Session.send

        def sending_requests(self: Any, request: Any, **kwargs: Any) -> Any:
            response = send_requests(self, request, **kwargs)
            if response.status_code >= 400 and not kwargs.get("stream"):
                _record(f"HTTP {response.status_code} {request.path_url}", response.content)
            return response

        run = subprocess.run

        def running(*args: Any, **kwargs: Any) -> Any:
            try:
                result = run(*args, **kwargs)
            except subprocess.CalledProcessError as exc:
                _record("subprocess stdout", exc.stdout)
                _record("subprocess stderr", exc.stderr)
                raise
            _record("subprocess stdout", result.stdout)
            _record("subprocess stderr", result.stderr)
            return result

        self._patch(structlog.testing.LogCapture, "__call__", capturing)
        self._patch(httpx.Client, "send", sending)
        self._patch(requests.Session, "send", sending_requests)
        self._patch(subprocess, "run", running)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        _current_test[0] = nodeid

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for title, content in report.sections:
            if not title.endswith(f" {report.when}"):
                continue  # an earlier phase's section, already collected with that phase
            COLLECTOR.record(f"{report.nodeid} ({title})", content)
        if report.failed and report.longrepr is not None:
            # A failure's message may quote an error body or a log line too.
            COLLECTOR.record(f"{report.nodeid} ({report.when} failure)", str(report.longrepr))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        _current_test[0] = "(session end)"
        base = session.config.option.basetemp
        if base and Path(base).is_dir():
            # find, not Path.rglob: some tests build folders deeper than the recursion limit.
            found = self._run(
                ["find", base, "-type", "f", "-name", "*.log", "-print0"],
                capture_output=True,
                check=False,
            )
            for name in sorted(filter(None, found.stdout.split(b"\0"))):
                log = Path(os.fsdecode(name))
                COLLECTOR.record(f"file {log.relative_to(base)}", log.read_bytes())
        leaks = COLLECTOR.leaks(SECRETS)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if leaks:
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            if reporter is not None:
                reporter.write_sep("=", f"secrets leaked: {len(leaks)}", red=True)
                for leak in leaks[:50]:
                    reporter.write_line(f"{leak.where}: {leak.what}: ...{leak.excerpt}...")
        elif reporter is not None:
            reporter.write_sep(
                "-",
                f"secrets check: {len(SECRETS)} needles, "
                f"{len(COLLECTOR.texts)} texts collected, no leak",
            )

    def pytest_unconfigure(self) -> None:
        while self._undo:
            owner, name, original = self._undo.pop()
            setattr(owner, name, original)
