"""The MariaDB server the tests use: 127.0.0.1:3306, root, no password.

Each test gets a database of its own (``mariadb_database``), created and dropped here. Where the
server is absent the MariaDB cases are skipped, except under CI (CI=true), where that is a
failure: CI must test both databases. The outage tests stop and start the server itself
(``mariadb_stop``, ``mariadb_start``).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pymysql
import pytest

from tests.support.waiting import wait_for

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

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


def mariadb_available() -> bool:
    try:
        pymysql.connect(**MARIADB, connect_timeout=3).close()
    except pymysql.Error:
        return False
    return True


def require_mariadb() -> None:
    if mariadb_available():
        return
    message = "MariaDB is not reachable on 127.0.0.1:3306"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must run the MariaDB tests (.ci/run starts the server)")
    pytest.skip(message)


@contextmanager
def mariadb_database(*, opendental_schema: bool) -> Iterator[str]:
    """A fresh, empty database on the MariaDB server; dropped afterwards. Yields its URL."""
    require_mariadb()
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


def mariadb_stop() -> None:
    subprocess.run(
        ["/usr/bin/mariadb-admin", "--host=127.0.0.1", "--user=root", "shutdown"],
        check=True,
        timeout=60,
    )


def mariadb_start() -> None:
    subprocess.run(
        [
            "/usr/sbin/start-stop-daemon",
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        ],
        check=True,
        timeout=60,
    )
    ping = [
        "/usr/bin/mariadb-admin",
        "--host=127.0.0.1",
        "--user=root",
        "--connect-timeout=2",
        "ping",
    ]
    wait_for(lambda: subprocess.run(ping, capture_output=True, check=False).returncode == 0)
