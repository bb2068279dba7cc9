"""Fixtures shared by every test package: the real database servers on this machine.

Tests that need PostgreSQL or MariaDB take the ``postgres_server`` or ``mariadb_server``
fixture. When a server cannot be reached the test fails under CI (``CI`` set) and is
skipped elsewhere with the command that starts it: CI must never hide a missing service.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import airflow_support  # noqa: F401  (configures Airflow before anything imports it)
import pytest

IN_CI = bool(os.environ.get("CI"))


@dataclass(frozen=True)
class DatabaseServer:
    """Where a real database server listens, and a superuser that can log in without a password."""

    engine: str
    host: str
    port: int
    user: str
    database: str

    @property
    def dsn(self) -> str:
        scheme = "postgresql" if self.engine == "postgresql" else "mysql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


POSTGRES = DatabaseServer(
    engine="postgresql",
    host=os.environ.get("AURORA_WAKE_TEST_PG_HOST", "127.0.0.1"),
    port=int(os.environ.get("AURORA_WAKE_TEST_PG_PORT", "5432")),
    user=os.environ.get("AURORA_WAKE_TEST_PG_USER", "postgres"),
    database=os.environ.get("AURORA_WAKE_TEST_PG_DATABASE", "test"),
)
MARIADB = DatabaseServer(
    engine="mysql",
    host=os.environ.get("AURORA_WAKE_TEST_MYSQL_HOST", "127.0.0.1"),
    port=int(os.environ.get("AURORA_WAKE_TEST_MYSQL_PORT", "3306")),
    user=os.environ.get("AURORA_WAKE_TEST_MYSQL_USER", "root"),
    database=os.environ.get("AURORA_WAKE_TEST_MYSQL_DATABASE", "test"),
)

_START_HINT = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "mysql": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}


def _require(server: DatabaseServer) -> DatabaseServer:
    try:
        with socket.create_connection((server.host, server.port), timeout=3):
            pass
    except OSError as exc:
        message = (
            f"{server.engine} is not reachable at {server.host}:{server.port} ({exc}); "
            f"start it with: {_START_HINT[server.engine]}"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return server


@pytest.fixture(scope="session")
def postgres_server() -> DatabaseServer:
    """The real PostgreSQL server (trust authentication for ``postgres``)."""
    return _require(POSTGRES)


@pytest.fixture(scope="session")
def mariadb_server() -> DatabaseServer:
    """The real MariaDB server (``root`` with an empty password)."""
    return _require(MARIADB)


@pytest.fixture(scope="session", params=["postgresql", "mysql"])
def database_server(request: pytest.FixtureRequest) -> DatabaseServer:
    """Each real database server in turn, for tests that must pass on both engines."""
    return _require(POSTGRES if request.param == "postgresql" else MARIADB)


@dataclass(frozen=True)
class PasswordLogin:
    """A login that the real server checks by password (created by ``.ci/services``)."""

    user: str
    password: str


PASSWORD_LOGIN = PasswordLogin(user="aurora_wake_pw", password="aurora-wake-test-password")


@pytest.fixture(scope="session")
def password_login() -> PasswordLogin:
    """The ``aurora_wake_pw`` login with a password, on both PostgreSQL and MariaDB.

    PostgreSQL on this machine trusts 127.0.0.1, so ``.ci/services`` adds a pg_hba rule that
    makes this one role authenticate with scram-sha-256; wrong-password tests need it.
    """
    import psycopg

    _require(POSTGRES)
    try:
        with psycopg.connect(
            host=POSTGRES.host,
            port=POSTGRES.port,
            user=PASSWORD_LOGIN.user,
            password="certainly-not-the-password",
            dbname=POSTGRES.database,
            connect_timeout=5,
        ):
            pass
    except psycopg.OperationalError as exc:
        if "password authentication failed" in str(exc):
            return PASSWORD_LOGIN
        message = f"the password login is not set up ({exc}); run .ci/services"
    else:
        message = "PostgreSQL accepted a wrong password for aurora_wake_pw; run .ci/services"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An HTTP endpoint URL whose server accepts connections and never sends a byte.

    What a dropped route, a stalled proxy or a firewall that swallows packets looks like.
    """
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()
