"""TLS is never downgraded: what the probes send to servers that decline TLS, fail it or need it.

The fake servers (``tls_servers``) record every byte they receive, so "the password was not
sent" is checked on the wire, not inferred from an exception.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from cluster_snapshots import v2_snapshot
from tls_servers import (
    PG_SSL_REQUEST,
    Certificates,
    FakeMySql,
    FakePostgres,
    make_certificates,
    mysql_offers_tls,
)

from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.errors import DatabaseConfigurationError, classify_error
from airflow_aurora_wake.core.probes import DatabaseTarget, SslSetting, probe_database
from airflow_aurora_wake.core.targets import LoginSettings, build_target

PASSWORD = "s3cret-password-never-in-clear"
#: An IAM token is a presigned URL, longer than 255 bytes (the limit of a one-byte length).
TOKEN = "127.0.0.1:3306/?Action=connect&DBUser=iam_user&X-Amz-Signature=" + "5a" * 420


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(Path(tmp_path_factory.mktemp("tls")))


def cluster(engine: str, port: int) -> ClusterSnapshot:
    return v2_snapshot(engine, endpoint="127.0.0.1", port=port)


async def sign(host: str, port: int, user: str) -> str:
    return TOKEN


def iam_target(engine: str, port: int, ssl_setting: SslSetting = None) -> DatabaseTarget:
    """The target an IAM login gets from the one builder, with its default (or given) TLS."""
    settings = LoginSettings(user="iam_user", database="sales", iam=True, ssl=ssl_setting)
    return build_target(settings, cluster(f"aurora-{engine}", port), sign_token=sign)


def mysql_target(port: int, ssl_setting: SslSetting, password: str = PASSWORD) -> DatabaseTarget:
    return DatabaseTarget(
        engine="mysql",
        host="127.0.0.1",
        port=port,
        user="app",
        database="sales",
        password=password,
        ssl=ssl_setting,
    )


# --- MySQL: no password unless TLS is established ------------------------------------------------


@pytest.mark.parametrize("setting", [True, "require", "verify-full"])
async def test_mysql_sends_nothing_to_a_server_that_offers_no_tls(setting: SslSetting) -> None:
    """aiomysql alone would send the password, in clear: the server asks for mysql_clear_password."""
    async with FakeMySql(tls=None) as server:
        with pytest.raises(DatabaseConfigurationError, match="did not offer TLS") as caught:
            await probe_database(mysql_target(server.port, setting), connect_timeout=10)
        await server.finished()
    assert bytes(server.received) == b"", "the client must not answer the greeting at all"
    assert "password or token was not sent" in str(caught.value)
    verdict = classify_error(caught.value, where="mysql", target="db")
    assert not verdict.retry


async def test_mysql_refuses_the_real_mariadb_without_tls(mariadb_server: Any) -> None:
    host, port = mariadb_server.host, mariadb_server.port
    if await mysql_offers_tls(host, port):
        pytest.skip("this MariaDB offers TLS")
    target = DatabaseTarget(engine="mysql", host=host, port=port, user=mariadb_server.user, ssl=True)
    with pytest.raises(DatabaseConfigurationError, match="did not offer TLS"):
        await probe_database(target, connect_timeout=10)


async def test_mysql_iam_defaults_to_tls_and_never_sends_the_token_in_clear() -> None:
    """No ssl setting, a server without TLS nor long auth answers: today a struct.error, token exposed."""
    async with FakeMySql(tls=None, lenenc=False) as server:
        target = iam_target("mysql", server.port)
        with pytest.raises(DatabaseConfigurationError, match="did not offer TLS"):
            await probe_database(target, connect_timeout=10)
        await server.finished()
    assert TOKEN.encode() not in server.received
    assert bytes(server.received) == b""
    assert target.ssl is True


async def test_a_token_too_long_for_the_server_is_a_clear_error(certificates: Certificates) -> None:
    """A server without CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA cannot take a token: say so, no struct.error."""
    async with FakeMySql(tls=certificates.server_context(), lenenc=False) as server:
        with pytest.raises(
            DatabaseConfigurationError, match=r"longer than 254 bytes.*so it was not sent"
        ) as caught:
            await probe_database(iam_target("mysql", server.port), connect_timeout=10)
    assert TOKEN not in str(caught.value)
    assert not classify_error(caught.value, where="mysql").retry


@pytest.mark.parametrize("plugin", ["mysql_clear_password", "mysql_native_password"])
@pytest.mark.parametrize("verify", [False, True], ids=["default-tls", "verifying-context"])
async def test_a_long_iam_token_arrives_whole_over_tls(
    certificates: Certificates, plugin: str, verify: bool
) -> None:
    """The whole handshake: TLS upgrade, the token in the first answer (or after Aurora's switch to
    mysql_clear_password), the OK, then SELECT 1. The server accepts the token only over TLS."""
    async with FakeMySql(tls=certificates.server_context(), plugin=plugin, token=TOKEN) as server:
        setting = certificates.client_context() if verify else None
        await probe_database(iam_target("mysql", server.port, setting), connect_timeout=10)
    assert server.tls_used
    assert server.passwords == [TOKEN.encode()]
    assert server.queries[-1] == "SELECT 1"


# --- PostgreSQL: IAM requires TLS, sslmode require fails at once -----------------------------------


async def test_postgres_iam_token_never_goes_to_a_server_that_declines_tls() -> None:
    async with FakePostgres(tls=None) as server:
        target = iam_target("postgresql", server.port)
        with pytest.raises(Exception) as caught:
            await probe_database(target, connect_timeout=10)
        await server.finished()
    # asyncpg's first message is the 8-byte SSLRequest; after the "N" it must stop there.
    assert TOKEN.encode() not in server.received
    assert bytes(server.received) == PG_SSL_REQUEST
    assert target.ssl == "require"
    verdict = classify_error(caught.value, where="postgresql", target=target.describe())
    assert not verdict.retry
    assert isinstance(verdict.error, DatabaseConfigurationError)
    assert "declined TLS" in str(verdict.error) and "sslmode" in str(verdict.error)


async def test_sslmode_require_against_the_real_postgres_without_tls_fails_at_once(
    postgres_server: Any,
) -> None:
    import asyncpg

    server = postgres_server
    connection = await asyncpg.connect(
        host=server.host, port=server.port, user=server.user, database=server.database, ssl="disable"
    )
    try:
        if await connection.fetchval("SHOW ssl") == "on":
            pytest.skip("this PostgreSQL offers TLS")
    finally:
        await connection.close()
    target = DatabaseTarget(
        engine="postgresql",
        host=server.host,
        port=server.port,
        user=server.user,
        database=server.database,
        ssl="require",
    )
    with pytest.raises(Exception) as caught:
        await probe_database(target, connect_timeout=10)
    verdict = classify_error(caught.value, where="postgresql", target=target.describe())
    assert not verdict.retry
    assert isinstance(verdict.error, DatabaseConfigurationError)
    assert "sslmode" in str(verdict.error)


# --- Certificates: fatal at once, one message on both engines --------------------------------------


async def test_a_certificate_failure_is_fatal_with_the_same_message_on_both_engines(
    certificates: Certificates,
) -> None:
    """The server's certificate is signed by a CA the client does not trust."""
    messages = {}
    for engine, server in (
        ("postgresql", FakePostgres(tls=certificates.server_context())),
        ("mysql", FakeMySql(tls=certificates.server_context())),
    ):
        async with server:
            target = DatabaseTarget(
                engine=engine,  # type: ignore[arg-type]
                host="127.0.0.1",
                port=server.port,
                user="app",
                password=PASSWORD,
                ssl=ssl.create_default_context(),
            )
            with pytest.raises(Exception) as caught:
                await probe_database(target, connect_timeout=10)
        assert PASSWORD.encode() not in server.received
        verdict = classify_error(caught.value, where=engine, target="the target")
        assert not verdict.retry, f"{engine}: {verdict.reason}"
        assert isinstance(verdict.error, DatabaseConfigurationError)
        messages[engine] = str(verdict.error)
    assert messages["postgresql"] == messages["mysql"]
    assert messages["mysql"].startswith("TLS certificate verification failed for the target: ")
