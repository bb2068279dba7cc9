"""AuroraServerlessHook: database targets from Airflow connections, and the AWS clients.

The database-target tests need no AWS endpoint: the cluster snapshot is built directly. The
client tests point the AWS connection's ``endpoint_url`` at the emulator.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from airflow_support import set_connection, set_database_connection
from cluster_snapshots import v2_snapshot

from airflow_aurora_wake.core.errors import DatabaseConfigurationError, InvalidParameterError
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook

snapshot = v2_snapshot


def hook(conn_id: str | None = "db", **kwargs: Any) -> AuroraServerlessHook:
    return AuroraServerlessHook(aws_conn_id=None, region_name="us-east-1", conn_id=conn_id, **kwargs)


async def test_empty_host_uses_cluster_writer_endpoint_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    set_database_connection(
        monkeypatch, "db", engine="postgresql", user="app", password="pw", database="sales"
    )
    target = await hook().database_target(snapshot())
    assert (target.engine, target.host, target.port, target.user, target.database) == (
        "postgresql",
        "sales.cluster.example",
        15432,
        "app",
        "sales",
    )
    assert target.password == "pw"
    assert target.password_provider is None
    assert target.conn_id == "db"
    assert "pw" not in repr(target)


async def test_connection_host_and_port_win_over_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    set_database_connection(
        monkeypatch, "db", engine="mysql", user="app", host="proxy.local", port=3307, database="sales"
    )
    target = await hook().database_target(snapshot("aurora-mysql"))
    assert (target.engine, target.host, target.port) == ("mysql", "proxy.local", 3307)


async def test_host_without_port_gets_the_engine_default_port(monkeypatch: pytest.MonkeyPatch) -> None:
    set_database_connection(monkeypatch, "db", engine="mysql", user="app", host="proxy.local")
    target = await hook().database_target(snapshot("aurora-mysql"))
    assert target.port == 3306


async def test_database_parameter_overrides_connection_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    set_database_connection(monkeypatch, "db", engine="postgresql", user="app", database="sales")
    target = await hook(database="reports").database_target(snapshot())
    assert target.database == "reports"


@pytest.mark.parametrize(
    ("conn_type", "engine"),
    [("mysql", "aurora-postgresql"), ("postgres", "aurora-mysql"), ("http", "aurora-postgresql")],
)
async def test_connection_type_must_match_the_cluster_engine(
    monkeypatch: pytest.MonkeyPatch, conn_type: str, engine: str
) -> None:
    set_database_connection(monkeypatch, "db", engine="postgresql", conn_type=conn_type, user="app")
    with pytest.raises(DatabaseConfigurationError) as excinfo:
        await hook().database_target(snapshot(engine))
    message = str(excinfo.value)
    assert "'db'" in message and repr(conn_type) in message and engine in message


async def test_unknown_conn_id_is_named_in_the_error() -> None:
    with pytest.raises(InvalidParameterError) as excinfo:
        await hook("no_such_connection").database_target(snapshot())
    assert excinfo.value.parameter == "conn_id"
    assert "no_such_connection" in str(excinfo.value)
    assert "AIRFLOW_CONN_NO_SUCH_CONNECTION" in str(excinfo.value)


def test_unknown_conn_id_fails_synchronously_too() -> None:
    with pytest.raises(InvalidParameterError, match="no_such_connection"):
        hook("no_such_connection").check_database_connection()


async def test_missing_conn_id_says_what_to_pass() -> None:
    with pytest.raises(InvalidParameterError, match="conn_id=None"):
        await hook(None).database_target(snapshot())


async def test_no_host_anywhere_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_database_connection(monkeypatch, "db", engine="postgresql", user="app")
    with pytest.raises(DatabaseConfigurationError, match="no host"):
        await hook().database_target(snapshot(endpoint=None))


async def test_connection_without_login_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "db", conn_type="postgres", host="h")
    with pytest.raises(DatabaseConfigurationError, match="no login"):
        await hook().database_target(snapshot())


@pytest.mark.parametrize("mode", ["disable", "prefer", "require", "verify-full"])
async def test_postgres_sslmode_is_passed_to_the_driver(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    set_database_connection(monkeypatch, "db", engine="postgresql", user="app", extra={"sslmode": mode})
    target = await hook().database_target(snapshot())
    assert target.ssl == mode


async def test_postgres_sslmode_with_root_certificate_builds_a_verifying_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import certifi

    set_database_connection(
        monkeypatch,
        "db",
        engine="postgresql",
        user="app",
        extra={"sslmode": "verify-full", "sslrootcert": certifi.where()},
    )
    target = await hook().database_target(snapshot())
    assert isinstance(target.ssl, ssl.SSLContext)
    assert target.ssl.check_hostname is True
    assert target.ssl.verify_mode == ssl.CERT_REQUIRED


async def test_invalid_sslmode_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_database_connection(monkeypatch, "db", engine="postgresql", user="app", extra={"sslmode": "always"})
    with pytest.raises(DatabaseConfigurationError, match="sslmode='always'"):
        await hook().database_target(snapshot())


async def test_missing_certificate_file_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_database_connection(
        monkeypatch,
        "db",
        engine="postgresql",
        user="app",
        extra={"sslmode": "verify-ca", "sslrootcert": "/nonexistent/ca.pem"},
    )
    with pytest.raises(DatabaseConfigurationError, match="TLS settings could not be loaded"):
        await hook().database_target(snapshot())


@pytest.mark.parametrize(("setting", "expected"), [(True, True), ("true", True), (False, None)])
async def test_mysql_ssl_flag(monkeypatch: pytest.MonkeyPatch, setting: object, expected: object) -> None:
    set_database_connection(monkeypatch, "db", engine="mysql", user="app", extra={"ssl": setting})
    target = await hook().database_target(snapshot("aurora-mysql"))
    assert target.ssl == expected


async def test_mysql_ssl_dict_builds_a_context(monkeypatch: pytest.MonkeyPatch) -> None:
    import certifi

    set_database_connection(
        monkeypatch,
        "db",
        engine="mysql",
        user="app",
        extra={"ssl": {"ca": certifi.where(), "check_hostname": False}},
    )
    target = await hook().database_target(snapshot("aurora-mysql"))
    assert isinstance(target.ssl, ssl.SSLContext)
    assert target.ssl.check_hostname is False


async def test_iam_extra_uses_a_token_provider_not_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-key")
    set_database_connection(
        monkeypatch, "db", engine="postgresql", user="iam_user", password="ignored", extra={"iam": True}
    )
    target = await hook().database_target(snapshot())
    assert target.password is None
    assert target.password_provider is not None
    token = await target.resolve_password()
    # A presigned "connect" URL for this host, port and user (local SigV4 signing, no network).
    assert token.startswith("sales.cluster.example:15432/?")
    query = parse_qs(urlsplit("https://" + token).query)
    assert query["Action"] == ["connect"]
    assert query["DBUser"] == ["iam_user"]
    assert "X-Amz-Signature" in query
    # A fresh token per call (tokens last 15 minutes; each connection attempt gets its own).
    assert target.password_provider is not None


async def test_invalid_iam_flag_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_database_connection(monkeypatch, "db", engine="postgresql", user="app", extra={"iam": "maybe"})
    with pytest.raises(DatabaseConfigurationError, match="'iam'"):
        await hook().database_target(snapshot())


async def test_clients_honour_the_aws_connection_endpoint_url(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(
        monkeypatch,
        "aws_custom",
        conn_type="aws",
        login="testing",
        password="testing",
        extra={"endpoint_url": "http://127.0.0.1:1", "region_name": "eu-west-1"},
    )
    aurora = AuroraServerlessHook(aws_conn_id="aws_custom", botocore_config={"retries": {"max_attempts": 1}})
    async with aurora.rds_client() as rds, aurora.rds_data_client() as rds_data:
        assert rds.meta.endpoint_url == "http://127.0.0.1:1"
        assert rds.meta.region_name == "eu-west-1"
        assert rds_data.meta.endpoint_url == "http://127.0.0.1:1"
        assert rds.meta.config.retries["total_max_attempts"] == 2  # botocore: max_attempts + 1
    assert await aurora.aget_region_name() == "eu-west-1"


async def test_region_parameter_wins_over_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "aws_custom", conn_type="aws", extra={"region_name": "eu-west-1"})
    aurora = AuroraServerlessHook(aws_conn_id="aws_custom", region_name="ap-south-1")
    async with aurora.rds_client() as rds:
        assert rds.meta.region_name == "ap-south-1"
